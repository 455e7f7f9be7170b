"""``python -m autoscaler``: the same as ``openstack-gitops-autoscaler``."""

import sys

from autoscaler.cli import main

sys.exit(main())
