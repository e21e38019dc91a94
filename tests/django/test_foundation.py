"""The package as a shop installs it: imports, checks, migrations, kernels."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

import django_recs
from django_recs import kernels
from django_recs.conf import DEFAULTS, recs_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_migrations_are_complete():
    # Fails (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_build_info_reports_native_openmp_kernels():
    info = kernels.build_info()
    assert set(info) >= {"native", "openmp", "max_threads"}
    assert info["max_threads"] >= 1
    if os.environ.get("DJANGO_RECS_REQUIRE_NATIVE") == "1":
        # CI builds the kernels: they must be compiled, with OpenMP.
        assert info["native"], f"compiled kernels missing: {info['missing']}"
        assert info["openmp"]


def test_row_norms_kernel_matches_numpy():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        X = sp.random(300, 40, density=0.1, format="lil", dtype=dtype, random_state=rng)
        X[5] = 0  # an empty row
        X = X.tocsr()
        got = kernels.row_norms(X, num_threads=2)
        expected = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert got[5] == 0


def test_row_norms_rejects_bad_input():
    with pytest.raises(ValueError, match="scipy.sparse"):
        kernels.row_norms(np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        kernels.row_norms(sp.csr_matrix(np.array([[np.nan, 1.0]])))
    with pytest.raises(ValueError, match="num_threads"):
        kernels.row_norms(sp.csr_matrix(np.ones((2, 2))), num_threads=-1)


def test_missing_native_kernels_fall_back_with_warning_and_check_w001(monkeypatch):
    from django_recs.kernels import _native

    real_import = _native.importlib.import_module

    def no_build(name, *args):
        if name.startswith("django_recs.kernels._"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(_native.importlib, "import_module", no_build)
    _native.native_module.cache_clear()
    try:
        X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0]]))
        with pytest.warns(_native.NativeKernelsMissing, match="numpy reference"):
            np.testing.assert_allclose(kernels.row_norms(X), [5.0, 0.0])
        assert kernels.build_info()["native"] is False
        ids = [m.id for m in checks.run_checks() if m.id.startswith("django_recs")]
        assert "django_recs.W001" in ids
    finally:
        _native.native_module.cache_clear()


def test_settings_are_read_at_call_time():
    assert recs_settings.NUM_THREADS == 1
    with override_settings(DJANGO_RECS={"NUM_THREADS": 3}):
        assert recs_settings.NUM_THREADS == 3
        assert DEFAULTS["EVENTS"] == recs_settings.EVENTS
    assert recs_settings.NUM_THREADS == 1
    with pytest.raises(AttributeError, match="Unknown django_recs setting"):
        recs_settings.NOT_A_SETTING  # noqa: B018


def test_item_models_checks():
    with override_settings(DJANGO_RECS={"ITEM_MODELS": []}):
        assert "django_recs.E001" in [m.id for m in checks.run_checks()]
    with override_settings(DJANGO_RECS={"ITEM_MODELS": ["shop.Nope"]}):
        messages = [m for m in checks.run_checks() if m.id == "django_recs.E002"]
        assert messages and "shop.Nope" in messages[0].msg


def test_import_django_recs_does_not_touch_the_app_registry():
    # The package is imported from settings modules and celery.py, before
    # Django is set up: importing it must not need the app registry.
    code = "import django_recs, django_recs.kernels; print(django_recs.__version__)"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == django_recs.__version__


@pytest.mark.parametrize(("arguments", "address"), [((), "127.0.0.1:8000"),
                                                      (("PORT=8011",), "127.0.0.1:8011")])
def test_make_demo_serves_on_the_chosen_port(arguments, address):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n prints the commands without running them.
    result = subprocess.run(["make", "-n", "demo", *arguments], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert f"example_project/manage.py demo --addrport {address}" in result.stdout


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (pip install -e .[test])")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

