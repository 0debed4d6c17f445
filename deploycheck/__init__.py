"""`python -m deploycheck`: build the compose stack from local images, bring it up, drive it.

Runs as root on a Linux host with Debian's packages: installs and starts dockerd when none is
running, builds the CI stand-in images (deploy/ci-images/) FROM a debootstrapped base, then runs
the README's `docker compose` commands and checks the shop through the gateway's published port
on 127.0.0.1. It leaves the host as it found it.
"""
