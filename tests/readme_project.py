"""A new Django project made from the README's "Adding django-recs" section, as written.

``django-admin startproject yourproject``, then the README's snippets pasted
where their first line says (``# yourproject/settings.py`` ...), a ``shop``
app standing for the shop's existing models (products, orders, order lines,
a product page), and the README's commands run one by one. What the test
changes is said where it is changed: the broker's Redis database and queue
(so parallel runs stay apart), the database when one is given, and the beat
interval (seconds instead of 3 a.m.).

Used by tests/django/test_readme.py (the checkout's django_recs, SQLite) and
by .ci/check-package (the built wheel in a fresh venv, PostgreSQL):

    python tests/readme_project.py DIR --python VENV/bin/python \\
        --broker redis://127.0.0.1:6379/15 --database-url postgres://... --worker

Only the standard library is imported here: the script runs beside any venv.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Adding django-recs to your project"
BEAT_SECONDS = 3.0

# -- the README ---------------------------------------------------------------------------


@dataclass
class Snippets:
    """The section's code blocks: files by the path on their first line, and commands."""

    files: dict[str, list[str]] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)


def readme_snippets(readme: Path = README) -> Snippets:
    text = readme.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else None]
    snippets = Snippets()
    for language, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        first, _, rest = body.partition("\n")
        path = re.fullmatch(r"(?:#|\{#)\s*([\w/.]+\.\w+)\s*(?:#\})?", first.strip())
        if path:
            snippets.files.setdefault(path.group(1), []).append(rest)
        elif language == "sh":
            for line in body.splitlines():
                command = line.split("#", 1)[0].strip()
                if command:
                    snippets.commands.append(shlex.split(command))
        else:
            raise ValueError(f"a {language} block of the README names no file:\n{body}")
    return snippets


def command(snippets: Snippets, *words: str) -> list[str]:
    """The README's command that starts with ``words``."""
    for argv in snippets.commands:
        if argv[: len(words)] == list(words):
            return argv
    raise LookupError(f"the README has no command {' '.join(words)!r}")


# -- the shop's own code (what a shop has before it installs django-recs) -------------------

SHOP_FILES = {
    "shop/__init__.py": "",
    "shop/models.py": '''
from django.conf import settings
from django.db import models
from django.urls import reverse


class Product(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("product", args=[self.pk])


class Order(models.Model):
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.PositiveIntegerField(default=1)
''',
    "shop/views.py": '''
from django.shortcuts import get_object_or_404, render

from .models import Product


def product_detail(request, pk):
    product = get_object_or_404(Product, pk=pk)
    return render(request, "shop/product_detail.html", {"product": product})
''',
    "shop/urls.py": '''
from django.urls import path

from . import views

urlpatterns = [path("products/<int:pk>/", views.product_detail, name="product")]
''',
    "shop/management/__init__.py": "",
    "shop/management/commands/__init__.py": "",
    # The orders the shop has before django-recs: customers in two groups
    # (garden, kitchen), each buying two or three products of its group.
    "shop/management/commands/load_orders.py": '''
import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from shop.models import Order, OrderLine, Product


class Command(BaseCommand):
    def handle(self, *args, **options):
        rng = random.Random(7)
        groups = [[Product.objects.create(name=f"{kind} {i}") for i in range(8)]
                  for kind in ("Garden", "Kitchen")]
        for number in range(60):
            customer = get_user_model().objects.create_user(f"customer{number}")
            order = Order.objects.create(customer=customer)
            for product in rng.sample(groups[number % 2], rng.choice([2, 3])):
                OrderLine.objects.create(order=order, product=product, quantity=1)
''',
    # Waits for the runs of every configured algorithm that Celery started.
    "shop/management/commands/wait_for_runs.py": '''
import time

from django.core.management.base import BaseCommand, CommandError

from django_recs.registry import algorithm_names
from django_recs.models import Run


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--triggered-by", required=True)
        parser.add_argument("--timeout", type=float, default=120)

    def handle(self, *args, triggered_by, timeout, **options):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = {run.algorithm: run for run in
                    Run.objects.filter(triggered_by=triggered_by).order_by("created_at")}
            failed = [run for run in runs.values() if run.status == "failed"]
            if failed:
                raise CommandError("; ".join(f"{run}: {run.error}" for run in failed))
            if set(runs) >= set(algorithm_names()) and all(
                    run.status == "succeeded" for run in runs.values()):
                self.stdout.write(" ".join(f"{run.algorithm}#{run.pk}" for run in runs.values()))
                return
            time.sleep(0.5)
        raise CommandError(f"runs by {triggered_by!r} not all succeeded in {timeout} s: "
                           f"{list(Run.objects.values_list('algorithm', 'status', 'triggered_by'))}")
''',
    # What a visitor sees on a product page.
    "shop/management/commands/show_product.py": '''
from django.core.management.base import BaseCommand
from django.test import Client


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("pk", type=int)

    def handle(self, *args, pk, **options):
        response = Client(HTTP_HOST="localhost").get(f"/products/{pk}/")
        assert response.status_code == 200, response.status_code
        self.stdout.write(response.content.decode())
''',
}


# -- building and running the project ---------------------------------------------------------


@dataclass
class Project:
    """A project made from the README, run with ``python`` (a venv's interpreter)."""

    root: Path
    python: Path
    broker: str
    env: dict[str, str]

    def manage(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.python), "manage.py", *argv], cwd=self.root,
                                env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(argv)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def run_readme_command(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """A README command: ``python manage.py ...`` with this project's interpreter."""
        assert argv[:2] == ["python", "manage.py"], argv
        return self.manage(*argv[2:], **kwargs)

    def start(self, argv: list[str], log: Path) -> subprocess.Popen:
        """A README command that keeps running (``celery -A yourproject ...``)."""
        assert argv[0] == "celery", argv
        executable = self.python.parent / "celery"
        return subprocess.Popen([str(executable), *argv[1:]], cwd=self.root, env=self.env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)


def make_project(root: Path, *, python: Path, broker: str, database_url: str = "",
                 extra_pythonpath: str = "", snippets: Snippets | None = None) -> Project:
    """``startproject`` in ``root``, the shop's app, then the README's files pasted in."""
    snippets = snippets or readme_snippets()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": extra_pythonpath, "DJANGO_SETTINGS_MODULE": ""}
    for variable in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "DATABASE_URL"):
        env.pop(variable, None)
    subprocess.run([str(python), "-m", "django", "startproject", "yourproject", str(root)],
                   check=True, env=env, capture_output=True, text=True)
    for name, text in SHOP_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    settings = root / "yourproject" / "settings.py"
    # The shop's app and its product page were there before django-recs.
    with settings.open("a") as out:
        out.write('\nINSTALLED_APPS += ["shop"]\n')
    urls = root / "yourproject" / "urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path",
                                             "from django.urls import include, path")
                    .replace("urlpatterns = [", 'urlpatterns = [\n    path("", include("shop.urls")),'))
    # The README's snippets, as written.
    for name, bodies in snippets.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "yourproject/settings.py":
            with path.open("a") as out:
                for body in bodies:
                    out.write("\n" + body)
        else:
            assert len(bodies) == 1, name
            path.write_text(bodies[0])
    # What the test changes: the broker (its own Redis database and queue), the
    # database, and a beat every few seconds rather than at 3 a.m.
    queue = f"readme-{uuid.uuid4().hex[:8]}"
    overrides = [
        f"CELERY_BROKER_URL = {broker!r}",
        f"CELERY_TASK_DEFAULT_QUEUE = {queue!r}",
        f'CELERY_BEAT_SCHEDULE["recompute-recommendations"]["schedule"] = {BEAT_SECONDS}',
    ]
    if database_url:
        overrides.append(f"DATABASES = {{'default': {_database(database_url)!r}}}")
    with settings.open("a") as out:
        out.write("\n# -- the test's changes --\n" + "\n".join(overrides) + "\n")
    return Project(root, Path(python), broker, env)


def _database(url: str) -> dict:
    parsed = urlparse(url)
    engine = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql"}[parsed.scheme]
    return {"ENGINE": f"django.db.backends.{engine}", "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username or "", "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "", "PORT": str(parsed.port or "")}


def first_run(project: Project, snippets: Snippets | None = None) -> dict[str, str]:
    """Step 4 of the README with the shop's orders in place; outputs by command."""
    snippets = snippets or readme_snippets()
    project.manage("makemigrations", "shop")  # the shop's own migration
    outputs = {}
    for argv in snippets.commands:
        if argv[:2] != ["python", "manage.py"]:
            continue
        outputs[argv[2]] = project.run_readme_command(argv).stdout + ""
        if argv[2] == "migrate":
            project.manage("load_orders")  # the orders the shop already had
    return outputs


def product_page(project: Project, pk: int) -> str:
    return project.manage("show_product", str(pk)).stdout


def nightly_runs(project: Project, log_dir: Path, snippets: Snippets | None = None,
                 timeout: float = 120) -> str:
    """Step 6: the README's worker and beat until beat's runs of every algorithm succeed."""
    snippets = snippets or readme_snippets()
    processes = []
    try:
        processes.append(project.start(command(snippets, "celery", "-A", "yourproject", "worker"),
                                       log_dir / "worker.log"))
        processes.append(project.start(command(snippets, "celery", "-A", "yourproject", "beat"),
                                       log_dir / "beat.log"))
        try:
            return project.manage("wait_for_runs", "--triggered-by", "celery",
                                  "--timeout", str(timeout), timeout=timeout + 60).stdout
        except AssertionError as error:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}"
                             for p in sorted(log_dir.glob("*.log")))
            raise AssertionError(f"{error}\n{logs}") from None
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--worker", action="store_true",
                        help="also run the README's worker and beat until beat's runs succeed")
    args = parser.parse_args()
    started = time.monotonic()
    project = make_project(args.directory, python=args.python, broker=args.broker,
                           database_url=args.database_url)
    first_run(project)
    page = product_page(project, 1)
    shown = page.count("<li>")
    if shown < 2:
        raise SystemExit(f"the product page shows {shown} recommended items:\n{page}")
    print(f"README project: first run done, product page lists {shown} items")
    if args.worker:
        print("README project: beat's runs on the worker:", nightly_runs(project, args.directory))
    print(f"README project passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
