from django.db import migrations, models


def seed(apps, schema_editor):
    Tune = apps.get_model("music", "Tune")
    for title in ["So What", "Blue in Green", "All Blues", "Freddie Freeloader"]:
        Tune.objects.get_or_create(title=title)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Tune",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=200, unique=True)),
                ("requests", models.PositiveIntegerField(default=0)),
            ],
            options={"ordering": ["title"]},
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
