"""``python -m healthwatcher``: the same as ``openstack-gitops-health-watcher``."""

import sys

from healthwatcher.cli import main

sys.exit(main())
