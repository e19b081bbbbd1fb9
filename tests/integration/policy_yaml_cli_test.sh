#!/usr/bin/env bash
# `toani policy sign` reads a .yaml policy as the JSON document it stands for: the
# YAML and JSON files of one policy sign to the same envelope (same canonical bytes,
# same Ed25519 signature), and YAML that does not map to JSON fails with a clear error.
# Usage: policy_yaml_cli_test.sh PATH/TO/toani
set -euo pipefail
T="$1"
D=$(mktemp -d /tmp/toani-yaml-cli-XXXXXX)
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$T" policy keygen --out "$D/admin.key" >/dev/null
cat >"$D/p.json" <<'JSON'
{"policy_id": "shop", "version": 3,
 "actions": {"shop.order": {"agents": ["buyer-*"], "connector": "http",
   "credential": "cred_1", "request": {"method": "POST", "url": "https://shop.example/orders",
   "body": {"sku": "{{sku}}", "qty": "{{qty}}"}},
   "params": {"type": "object", "required": ["sku", "qty"], "additionalProperties": false,
     "properties": {"sku": {"type": "string", "pattern": "^[A-Z0-9-]{3,20}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 10}}},
   "egress": [{"host": "shop.example", "port": 443}],
   "approval": {"approvers": 1, "when": {"properties": {"qty": {"minimum": 5}}}}}}}
JSON
cat >"$D/p.yaml" <<'YAML'
# the same policy, in YAML
policy_id: shop
version: 3
actions:
  shop.order:
    agents: [buyer-*]
    connector: http
    credential: cred_1
    request:
      method: POST
      url: https://shop.example/orders
      body: {sku: "{{sku}}", qty: "{{qty}}"}
    params:
      type: object
      required: [sku, qty]
      additionalProperties: false
      properties:
        sku: {type: string, pattern: "^[A-Z0-9-]{3,20}$"}
        qty: {type: integer, minimum: 1, maximum: 10}
    egress:
      - {host: shop.example, port: 443}
    approval:
      approvers: 1
      when: {properties: {qty: {minimum: 5}}}
YAML
cp "$D/p.yaml" "$D/p2.YML"
"$T" policy sign "$D/p.json" --key "$D/admin.key" --out "$D/j.signed.json"
"$T" policy sign "$D/p.yaml" --key "$D/admin.key" --out "$D/y.signed.json"
"$T" policy sign "$D/p2.YML" --key "$D/admin.key" --out "$D/y2.signed.json"
cmp "$D/j.signed.json" "$D/y.signed.json" || fail "YAML and JSON forms signed differently"
cmp "$D/j.signed.json" "$D/y2.signed.json" || fail ".YML form signed differently"
grep -q '"sig"' "$D/y.signed.json" || fail "no signature in the envelope"

# YAML that does not map to JSON: the command fails and says why (and where).
bad() {  # bad NAME 'YAML TEXT' 'expected message part'
  printf '%s' "$2" >"$D/$1.yaml"
  if "$T" policy sign "$D/$1.yaml" --key "$D/admin.key" >"$D/out" 2>"$D/err"; then
    fail "$1: accepted"
  fi
  grep -q -- "$3" "$D/err" || fail "$1: error does not say '$3': $(cat "$D/err")"
  grep -q -- "$1.yaml" "$D/err" || fail "$1: error does not name the file: $(cat "$D/err")"
  [ ! -s "$D/out" ] || fail "$1: printed a signed policy"
}
bad tag $'policy_id: p\nversion: !!binary AAAA\n' 'tags are not supported'
bad dup $'policy_id: p\nversion: 1\nversion: 2\n' "duplicate key 'version'"
bad syntax $'policy_id: p\nactions: [\n' 'YAML policy: line'
bad multi $'policy_id: p\n---\npolicy_id: q\n' '2 documents'
echo "ok"
