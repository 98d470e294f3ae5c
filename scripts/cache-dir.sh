# Sourced by scripts that use kcr's cache directory: sets $cache as kcr itself finds it
# (core/config.cpp: KCR_CACHE_DIR, else /var/cache/kcr for root, ~/.cache/kcr otherwise).
if [ -n "${KCR_CACHE_DIR:-}" ]; then
  cache=$KCR_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then
  cache=/var/cache/kcr
else
  cache=$HOME/.cache/kcr
fi
