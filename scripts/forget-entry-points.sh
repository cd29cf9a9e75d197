#!/usr/bin/env bash
# Drop stevedore's on-disk entry-point cache after (re)installing plugins.
# stevedore keys it on entry_points.txt mtimes packed as float32 (128 s
# resolution), so a package reinstalled within two minutes of the last scan
# would keep its old entry points. The cache rebuilds itself on the next run.
rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/python-entrypoints"
