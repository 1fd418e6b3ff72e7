#!/usr/bin/env bash
# The checks a change must pass before any test runs: nothing built is
# tracked, no large file outside testdata/, gofmt, go vet (the nested
# modules too), shell syntax.
set -euo pipefail
cd "$(dirname "$0")/.."

# Built programs belong under bin/ (ignored), never in the tree: a tracked
# executable that git sees as binary, or any file that starts like an ELF,
# PE or Mach-O program, fails; so does a tracked file over 1 MiB outside
# testdata/ (captured data is the only large thing the repository keeps).
mapfile -t text_files < <(git grep -I --name-only -e '' -- . 2>/dev/null || true)
declare -A is_text=()
for f in "${text_files[@]}"; do is_text["$f"]=1; done
bad=()
while read -r mode _ _ path; do
  [[ -f "$path" ]] || continue
  magic="$(head -c 4 "$path" | od -An -tx1 | tr -d ' \n')"
  case "$magic" in
  7f454c46 | cffaedfe | cefaedfe | feedface | feedfacf | 4d5a*)
    bad+=("$path: a compiled program (build into bin/ instead)")
    continue ;;
  esac
  if [[ "$mode" == 100755 && -z "${is_text[$path]:-}" ]]; then
    bad+=("$path: an executable binary file")
    continue
  fi
  size="$(stat -c %s "$path")"
  if ((size > 1048576)) && [[ "$path" != testdata/* && "$path" != */testdata/* ]]; then
    bad+=("$path: $size bytes, over 1 MiB outside testdata/")
  fi
done < <(git ls-files -s)
if ((${#bad[@]})); then
  echo "tracked files that do not belong in the repository:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi

unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# The benchmark's in-memory S3 store is a module of its own.
(cd hack/bench/s3mem && go vet ./...)
bash -n hack/*.sh .ci/run
echo "lint ok"
