"""manage.py demo: a running shop with recommendations, from nothing, in one command.

1. migrate;
2. load the Online Retail sample (products, customers, orders) unless loaded;
3. backfill: every order line becomes a purchase (recs_import --from-sources);
4. compute recommendations (similar items, personal ALS, popular) in-process;
5. start the A/B experiment of the basket page's list (personal, popular or no list),
   unless one was made before;
6. print how to log in, and serve http://127.0.0.1:8000 (--no-serve to stop here).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db.models import Count

import django_recs
from django_recs.experiments import start
from django_recs.models import (
    Experiment,
    ExperimentPlacement,
    Interaction,
    Recommendation,
    RecommendationList,
    Variant,
)
from shop.catalog import DEMO_PASSWORD, load_sample
from shop.models import Product

STAFF = "staff"
#: The demo's A/B experiment: what the basket page's "Complete your basket" list earns.
EXPERIMENT = "Basket: personal, popular or no list"
EXPERIMENT_PLACEMENT = "basket-for-you"


class Command(BaseCommand):
    help = "Set up the example shop (data, recommendations) and serve it."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit")
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, no_serve=False, addrport="127.0.0.1:8000", **options):
        say = self.stdout.write
        call_command("migrate", verbosity=0)
        if not Product.objects.exists():
            say("Loading the Online Retail sample (UCI, CC BY 4.0) ...")
            counts = load_sample()
            say("  " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        if not Interaction.objects.exists():
            say("Recording the orders as purchases (recs_import --from-sources) ...")
            call_command("recs_import", "--from-sources", verbosity=0)
            say(f"  {Interaction.objects.count():,} interactions")
        User = get_user_model()
        if not User.objects.filter(username=STAFF).exists():
            User.objects.create_superuser(STAFF, "staff@example.com", DEMO_PASSWORD)
        if not (Recommendation.objects.exists() or RecommendationList.objects.exists()):
            say("Computing recommendations ...")
            for run in django_recs.recompute(sync=True, triggered_by="demo"):
                say(f"  {run.algorithm}: {run.status}, {run.rows_written:,} rows"
                    + (f" ({run.error})" if run.error else ""))
        experiment = demo_experiment()
        customer = demo_customer()
        say(self.style.SUCCESS("\nThe shop is ready."))
        say(f"  Shop:   http://{addrport}/")
        if customer:
            say(f"  Log in as a customer: {customer} / {DEMO_PASSWORD}"
                " (any customer<number> works; see 'Recommended for you')")
        say(f"  Admin:  http://{addrport}/admin/  as {STAFF} / {DEMO_PASSWORD}"
            " (Recommendations > Runs > Recompute now)")
        say(f"  A/B experiment: {experiment.name!r} at placement {EXPERIMENT_PLACEMENT!r},"
            f" {experiment.status} (Recommendations > Experiments > Results)")
        if not no_serve:
            call_command("runserver", addrport, use_reloader=False)


def demo_experiment() -> Experiment:
    """The basket page's experiment, started the first time: a third of the visitors each.

    "personal" (the control) shows the visitor's recommendations, "popular"
    the shop's bestsellers, "hold-out" no list at all.
    """
    experiment = Experiment.objects.filter(name=EXPERIMENT).first()
    if experiment is not None:
        return experiment
    experiment = Experiment.objects.create(name=EXPERIMENT, placements=EXPERIMENT_PLACEMENT,
                                           minimum_effect=0.10)
    Variant.objects.create(experiment=experiment, name="personal", algorithm="personal",
                           is_control=True)
    Variant.objects.create(experiment=experiment, name="popular", algorithm="popular")
    Variant.objects.create(experiment=experiment, name="hold-out", algorithm="none")
    if not ExperimentPlacement.objects.filter(running_placement=EXPERIMENT_PLACEMENT).exists():
        start(experiment)
    return experiment


def demo_customer() -> str | None:
    """A customer with stored recommendations and several orders."""
    User = get_user_model()
    with_recs = [*Recommendation.objects.values_list("user_id", flat=True).distinct(),
                 *RecommendationList.objects.values_list("user_id", flat=True).distinct()]
    customer = (
        User.objects.filter(pk__in=with_recs, username__startswith="customer")
        .annotate(order_count=Count("orders"))
        .filter(order_count__gte=5)
        .order_by("order_count", "pk")
        .first()
    )
    return customer.username if customer else None
