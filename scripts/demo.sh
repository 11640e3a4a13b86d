#!/usr/bin/env bash
# `make demo`: a real `godel do` with the offline demo runtime on a fresh copy of
# examples/demo-repo, against the embedded default (SQLite under GODEL_HOME, and a
# Redis Godel starts itself when none answers).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
godel="$root/.venv/bin/godel"
home="${GODEL_HOME:-$HOME/.godel}"
repo="$home/demo-repo"

rm -rf "$repo"
mkdir -p "$home"
cp -r "$root/examples/demo-repo" "$repo"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=Godel -c user.email=godel@localhost commit -qm "demo repository"

echo "Demo repository: $repo"
"$godel" do --runtime demo --repo "$repo" --yes "Add JWT authentication with rate limiting"
echo
echo "The job's branch: git -C $repo log --oneline --graph godel/<job>; stop the stack with: $godel down"
