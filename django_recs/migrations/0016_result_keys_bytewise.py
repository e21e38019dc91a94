"""On PostgreSQL, compare the result tables' item keys byte by byte (``COLLATE "C"``).

The keys are primary keys written as text: their order means nothing, so
sorting them by the database's language rules (``en_US.UTF-8`` and the
like) is wasted work — most of it in building the index of a run's
similar items, one row per neighbour. Equality is unchanged (every
deterministic collation compares equal text as equal), and a key compared
with a column or cast of the default collation takes this one. Other
databases are left as they are: MariaDB's tables are created with the
database's collation, SQLite compares bytes already.
"""

from django.db import migrations

#: (model, key columns): the columns whose collation changes.
KEY_COLUMNS = {
    "SimilarItem": ("item_key", "neighbour_key"),
    "Recommendation": ("item_key", "reason_key"),
    "PopularItem": ("item_key",),
}


def _collate(collation):
    def alter(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        quote = connection.ops.quote_name
        for name, columns in KEY_COLUMNS.items():
            table = apps.get_model("django_recs", name)._meta.db_table
            changes = ", ".join(
                f"ALTER COLUMN {quote(column)} TYPE varchar(64) COLLATE {collation}"
                for column in columns)
            # On a partitioned table this reaches every partition, and
            # rebuilds the indexes that hold the columns.
            schema_editor.execute(f"ALTER TABLE {quote(table)} {changes}")
    return alter


class Migration(migrations.Migration):

    dependencies = [
        ("django_recs", "0015_partition_recommendation_lists"),
    ]

    operations = [
        migrations.RunPython(_collate('"C"'), _collate('"default"')),
    ]
