#!/usr/bin/env python
"""The example shop's manage.py: ``python example_project/manage.py demo``."""

import os
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))  # shop_site, shop
    sys.path.insert(1, str(here.parent))  # django_recs from the checkout, if not installed
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
