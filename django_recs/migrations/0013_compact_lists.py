"""One row per user and run for stored recommendations (RecommendationList).

The data step moves the stored recommendations of every run into lists
(and back when reversed), in batches, so an installed shop keeps serving the
same lists without a recompute.
"""

import json

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


BATCH = 10_000


def rows_to_lists(apps, schema_editor):
    """Each (run, user, item type)'s Recommendation rows become one RecommendationList row."""
    Recommendation = apps.get_model("django_recs", "Recommendation")
    RecommendationList = apps.get_model("django_recs", "RecommendationList")
    using = schema_editor.connection.alias
    rows = (Recommendation.objects.using(using)
            .order_by("run_id", "user_id", "item_type_id", "rank")
            .values_list("run_id", "user_id", "item_type_id", "item_key", "score",
                         "reason_type_id", "reason_key"))
    batch, current, entries = [], None, []

    def flush():
        if entries:
            run_id, user_id, type_id = current
            batch.append(RecommendationList(
                run_id=run_id, user_id=user_id, item_type_id=type_id, length=len(entries),
                items=json.dumps(entries, separators=(",", ":"))))
        if len(batch) >= BATCH:
            RecommendationList.objects.using(using).bulk_create(batch)
            batch.clear()

    for run_id, user_id, type_id, key, score, reason_type, reason_key in rows.iterator(
            chunk_size=BATCH):
        if (run_id, user_id, type_id) != current:
            flush()
            current, entries = (run_id, user_id, type_id), []
        entry = [key, score]
        if reason_type is not None and reason_key:
            entry += [reason_type, reason_key]
        entries.append(entry)
    flush()
    RecommendationList.objects.using(using).bulk_create(batch)
    Recommendation.objects.using(using).all().delete()


def lists_to_rows(apps, schema_editor):
    """Each RecommendationList row becomes its Recommendation rows again."""
    Recommendation = apps.get_model("django_recs", "Recommendation")
    RecommendationList = apps.get_model("django_recs", "RecommendationList")
    using = schema_editor.connection.alias
    batch = []
    for row in RecommendationList.objects.using(using).order_by("pk").iterator(chunk_size=1000):
        for rank, entry in enumerate(json.loads(row.items)):
            explained = len(entry) > 3
            batch.append(Recommendation(
                run_id=row.run_id, user_id=row.user_id, item_type_id=row.item_type_id,
                item_key=str(entry[0]), score=float(entry[1]), rank=rank,
                reason_type_id=entry[2] if explained else None,
                reason_key=str(entry[3]) if explained else ""))
        if len(batch) >= BATCH:
            Recommendation.objects.using(using).bulk_create(batch)
            batch.clear()
    Recommendation.objects.using(using).bulk_create(batch)
    RecommendationList.objects.using(using).all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_recs', '0012_experiments'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RecommendationList',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('items', models.TextField(help_text='JSON: [[key, score, reason type, reason key], ...]')),
                ('length', models.PositiveIntegerField(help_text='Entries in the list.')),
                ('item_type', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='contenttypes.contenttype')),
                ('run', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='django_recs.run')),
                ('user', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'recommendation list',
                'verbose_name_plural': 'recommendation lists',
                'indexes': [models.Index(fields=['run', 'user', 'item_type'], name='recs_rec_list_lookup')],
            },
        ),
        migrations.RunPython(rows_to_lists, lists_to_rows, elidable=True),
    ]
