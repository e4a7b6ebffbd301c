#!/bin/sh
# say MESSAGE...: to stderr (the service's log) and to the console, which EC2 keeps (GetConsoleOutput).
say() {
  printf '%s: %s\n' "$me" "$*" >&2
  printf '%s: %s\n' "$me" "$*" >>/dev/console 2>/dev/null || true
}
