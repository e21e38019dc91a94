"""An experiment applies to one or more placements.

``Experiment.placement`` becomes ``placements`` (a comma-separated list), and
"one running experiment per placement" moves from ``Experiment.running_placement``
to a row per placement (:class:`ExperimentPlacement`) whose ``running_placement``
is unique. Existing experiments keep their placement and, running, their claim
on it. Reversible: going back keeps each experiment's first placement.
"""

import django.db.models.deletion
from django.db import migrations, models


def _checks_now(schema_editor):
    """PostgreSQL: no deferred foreign-key checks left pending before this migration's ALTERs."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def to_placement_rows(apps, schema_editor):
    _checks_now(schema_editor)
    db = schema_editor.connection.alias
    Experiment = apps.get_model("django_recs", "Experiment")
    ExperimentPlacement = apps.get_model("django_recs", "ExperimentPlacement")
    for experiment in Experiment.objects.using(db).order_by("pk"):
        experiment.placements = experiment.placement
        experiment.save(update_fields=["placements"])
        ExperimentPlacement.objects.using(db).create(
            experiment=experiment, placement=experiment.placement,
            running_placement=experiment.running_placement)


def to_one_placement(apps, schema_editor):
    _checks_now(schema_editor)
    db = schema_editor.connection.alias
    Experiment = apps.get_model("django_recs", "Experiment")
    ExperimentPlacement = apps.get_model("django_recs", "ExperimentPlacement")
    for experiment in Experiment.objects.using(db).order_by("pk"):
        first = (ExperimentPlacement.objects.using(db).filter(experiment=experiment)
                 .order_by("pk").first())
        placement = first.placement if first is not None else (
            experiment.placements.split(",")[0].strip()[:64])
        experiment.placement = placement
        experiment.running_placement = placement if experiment.status == "running" else None
        experiment.save(update_fields=["placement", "running_placement"])


class Migration(migrations.Migration):

    dependencies = [
        ('django_recs', '0013_compact_lists'),
    ]

    operations = [
        migrations.CreateModel(
            name='ExperimentPlacement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('placement', models.CharField(max_length=64)),
                ('running_placement', models.CharField(blank=True, editable=False, help_text='The placement while the experiment runs, else empty: one running experiment per placement.', max_length=64, null=True, unique=True)),
                ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='placement_rows', to='django_recs.experiment')),
            ],
            options={
                'verbose_name': 'experiment placement',
                'verbose_name_plural': 'experiment placements',
                'constraints': [models.UniqueConstraint(fields=('experiment', 'placement'), name='recs_experiment_placement')],
            },
        ),
        migrations.AddField(
            model_name='experiment',
            name='placements',
            field=models.CharField(default='', help_text='The placement= of the lists it applies to; several separated by commas.', max_length=500),
            preserve_default=False,
        ),
        migrations.RunPython(to_placement_rows, to_one_placement),
        migrations.RemoveField(
            model_name='experiment',
            name='running_placement',
        ),
        # With a default, so that going back adds the column to existing rows everywhere.
        migrations.AlterField(
            model_name='experiment',
            name='placement',
            field=models.CharField(default='', max_length=64),
        ),
        migrations.RemoveField(
            model_name='experiment',
            name='placement',
        ),
    ]
