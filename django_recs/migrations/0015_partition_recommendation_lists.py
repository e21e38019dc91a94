"""On PostgreSQL, partition the stored lists by run, as the other result tables (0007).

A run's lists are then copied into a table of their own, indexed once and
attached; the previous run's are dropped with ``DROP TABLE`` instead of
deleted row by row. Other databases are left as they are.
"""

from importlib import import_module

from django.db import migrations

partitioning = import_module("django_recs.migrations.0007_partition_results_by_run")
MODELS = ("RecommendationList",)


def partition(apps, schema_editor):
    partitioning.partition(apps, schema_editor, MODELS)


def unpartition(apps, schema_editor):
    partitioning.unpartition(apps, schema_editor, MODELS)


class Migration(migrations.Migration):

    dependencies = [
        ("django_recs", "0014_experiment_placements"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition),
    ]
