#!/usr/bin/env bash
# Install the system packages the tests' real servers need, when they are missing and we may (root + apt).
# Tests that need a missing tool skip with a reason naming it, so this never fails the build by itself.
set -u
need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v age-keygen >/dev/null || need+=(age)
command -v gpg >/dev/null || need+=(gnupg)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "system-deps: missing ${need[*]}; install them (Debian: sudo apt-get install -y ${need[*]}); tests needing them will skip"
fi
exit 0
