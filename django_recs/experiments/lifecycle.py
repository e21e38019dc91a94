"""An experiment started, stopped, and its winner promoted to serve its placement."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .routing import NONE

__all__ = ["check_variants", "connect", "promote", "start", "stop"]


def check_variants(experiment) -> None:
    """ValidationError unless the experiment has two or more variants that can be served.

    Each variant's algorithm must be in ALGORITHMS or be "none", its weight
    above 0, and exactly one variant the control.
    """
    from ..registry import algorithm_names

    variants = list(experiment.variants.all())
    if len(variants) < 2:
        raise ValidationError("An experiment needs at least two variants.")
    names = algorithm_names()
    for variant in variants:
        if variant.algorithm != NONE and variant.algorithm not in names:
            raise ValidationError(
                f"Variant {variant.name!r}: algorithm {variant.algorithm!r} is not in "
                f"DJANGO_RECS['ALGORITHMS'] ({', '.join(names) or 'none configured'}) "
                f"nor {NONE!r}.")
        if variant.weight <= 0:
            raise ValidationError(f"Variant {variant.name!r}: its weight must be above 0.")
    controls = [variant for variant in variants if variant.is_control]
    if len(controls) != 1:
        raise ValidationError(
            f"Exactly one variant must be the control, {len(controls)} are.")


def start(experiment) -> None:
    """Run ``experiment`` (a draft): visitors of its placements get its variants from now on.

    Raises ValidationError when its variants cannot run (:func:`check_variants`),
    it is not a draft, or another experiment runs at one of its placements
    (also refused by the database's unique constraint).
    """
    from ..models import Experiment

    if experiment.status != Experiment.Status.DRAFT:
        raise ValidationError(f"Only a draft can start; {experiment.name!r} is "
                              f"{experiment.status}.")
    check_variants(experiment)
    experiment.status = Experiment.Status.RUNNING
    experiment.full_clean()
    experiment.started_at = timezone.now()
    experiment.save()


def stop(experiment, *, promote_variant: str | None = None) -> None:
    """Stop ``experiment``; its results are kept as they stand. Optionally promote a variant.

    ``promote_variant`` (a variant's name) makes that variant's algorithm the
    one its placements serve to everyone (:func:`promote`). ValueError for
    an unknown variant name; ValidationError unless it is running.
    """
    from ..models import Experiment
    from .results import experiment_results

    if experiment.status != Experiment.Status.RUNNING:
        raise ValidationError(f"{experiment.name!r} is not running.")
    if promote_variant is not None and not experiment.variants.filter(
            name=promote_variant).exists():
        raise ValueError(f"experiment {experiment.name!r} has no variant {promote_variant!r}")
    with transaction.atomic():
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.save()
        experiment.results = experiment_results(experiment).as_dict()
        experiment.save(update_fields=["results"])
        if promote_variant is not None:
            promote(experiment, promote_variant)


def promote(experiment, variant_name: str) -> None:
    """Serve ``variant_name``'s algorithm at each of the experiment's placements to every visitor.

    Writes a :class:`PlacementAlgorithm` per placement (replacing a previous
    one); the lists of those placements serve its algorithm whatever the
    page asks for, until the row is deleted (admin). ValueError for an
    unknown variant; ValidationError while the experiment runs.
    """
    from ..models import Experiment, PlacementAlgorithm

    if experiment.status == Experiment.Status.RUNNING:
        raise ValidationError("Stop the experiment before promoting a variant.")
    variant = experiment.variants.filter(name=variant_name).first()
    if variant is None:
        raise ValueError(f"experiment {experiment.name!r} has no variant {variant_name!r}")
    with transaction.atomic():
        for placement in experiment.placement_list:
            PlacementAlgorithm.objects.update_or_create(
                placement=placement,
                defaults={"algorithm": variant.algorithm, "experiment": experiment,
                          "updated_at": timezone.now()})
        experiment.promoted_variant = variant.name
        experiment.save(update_fields=["promoted_variant"])


def connect() -> None:
    """Connect the receivers (from ``AppConfig.ready()``): caches, login, erasure."""
    from django.contrib.auth.signals import user_logged_in

    from ..capture import user_forgotten
    from .routing import connect as connect_routing
    from .units import forget_account_unit, join_login

    connect_routing()
    user_logged_in.connect(join_login, dispatch_uid="django_recs.experiments.login")
    user_forgotten.connect(forget_account_unit, dispatch_uid="django_recs.experiments.forget")
