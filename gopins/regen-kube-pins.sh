#!/usr/bin/env bash
# Re-derive gopins/kube/go.mod from the pinned k8s.io/kubernetes release.
# Its staging modules are `replace`d to ./staging in that go.mod, which binds
# only that module, so a dependent module must replace each with its tag.
set -euo pipefail
cd "$(dirname "$0")/kube"
version=${1:-$(sed -n 's/^\s*k8s.io\/kubernetes \(v[^ ]*\).*/\1/p' go.mod | head -1)}
staging="v0.${version#v1.}"
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' |
  while read -r module; do go mod edit -replace="$module=$module@$staging"; done
go mod edit -require="k8s.io/kubernetes@$version"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  go mod edit -tool="k8s.io/kubernetes/cmd/$cmd"
done
go mod tidy
echo "pinned k8s.io/kubernetes $version with staging modules at $staging"
