import sys

from mlx_instruct.cli import main

sys.exit(main())
