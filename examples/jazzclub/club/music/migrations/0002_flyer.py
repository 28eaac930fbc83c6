from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("music", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Flyer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=200)),
                ("image", models.FileField(upload_to="flyers/")),
                ("uploaded", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-uploaded"]},
        ),
    ]
