//! Empty: this package only names the sources `hardened_malloc.sh` builds.
