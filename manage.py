#!/usr/bin/env python
"""manage.py of the test suite's settings (tests/settings.py), for
makemigrations and checks while developing django_recs itself."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
