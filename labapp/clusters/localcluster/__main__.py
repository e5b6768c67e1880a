"""`python -m labapp.clusters.localcluster [--cache DIR] [--print-key]`: build the Go pins.

The image's first stage runs it with the standard library only (this package's
`__init__` files there are empty), before any of the application is copied in.
"""

from labapp.clusters.localcluster.build import main

raise SystemExit(main())
