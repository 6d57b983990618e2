"""The catalogue's starting entries (contract section 8); admins edit or add to them after."""

from django.db import migrations

DEFAULTS = [
    {
        "name": "sora-2",
        "label": "Sora 2",
        "sizes": ["1280x720", "720x1280"],
        "seconds": [4, 8, 12],
        "prices": {"1280x720": "0.10", "720x1280": "0.10"},
        "position": 0,
    },
    {
        "name": "sora-2-pro",
        "label": "Sora 2 Pro",
        "sizes": ["1280x720", "720x1280", "1792x1024", "1024x1792"],
        "seconds": [4, 8, 12],
        "prices": {"1280x720": "0.30", "720x1280": "0.30", "1792x1024": "0.50", "1024x1792": "0.50"},
        "position": 1,
    },
]


def add_defaults(apps, schema_editor):
    ModelSpec = apps.get_model("videos", "ModelSpec")
    for entry in DEFAULTS:
        ModelSpec.objects.get_or_create(name=entry["name"], defaults=entry)


class Migration(migrations.Migration):
    dependencies = [("videos", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
