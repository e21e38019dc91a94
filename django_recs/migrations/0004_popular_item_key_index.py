# Serving looks up one item's popularity by key (the score of a fallback item).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_recs', '0003_result_rows_without_constraints'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='popularitem',
            index=models.Index(fields=['run', 'item_type', 'item_key'], name='recs_popular_item'),
        ),
    ]
