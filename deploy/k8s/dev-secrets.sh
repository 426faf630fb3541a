#!/usr/bin/env bash
# Generate the Secrets (and the trusted public key set) a DEV cluster needs, and print or apply them.
#
#   deploy/k8s/dev-secrets.sh                    # print YAML to stdout (nothing leaves your machine)
#   deploy/k8s/dev-secrets.sh --apply            # kubectl apply into namespace flashline-dev
#   deploy/k8s/dev-secrets.sh --apply --rotate   # new passwords and keys (then restart the pods)
#
# Options: --namespace NS (default flashline-dev), --vhost VHOST (default: the namespace, which is
# the overlay's vhost), --context CTX (kubectl context).
#
# What it makes (names and keys are what deploy/k8s references; tests/k8s checks they match):
#   <svc>-db-credentials        basic-auth username/password   CloudNativePG owner role of <svc>'s database
#   <svc>-rabbitmq-credentials  username/password              broker user (Messaging Topology Operator)
#   <svc>-runtime               database-url, amqp-url         the service's connection URLs
#   <svc>-signing-key           signing-key.pem, kid           Ed25519 key the service signs grants with
#   push-gateway-rabbitmq-credentials, push-gateway-runtime (amqp-url, admin-api-key)
#   flashline-internal-api-key  internal-api-key               the gateway's key for the services'
#                                                              GET /internal/channels/{channel}
#   dev-identity-signing-key    signing-key.pem, kid           dev identity provider (mint user tokens):
#                                                              RSA (RS256), as identity providers sign
#   ConfigMap flashline-trusted-keys  trusted-keys.json        public keys every pod trusts, with the
#                                                              namespaces each issuer may grant
# for <svc> in catalog, orders, cart.
#
# With --apply, values already in the cluster are reused (a database keeps the password it was
# initialised with) unless --rotate is given. Production secrets never come from this script: it
# refuses namespaces containing "prod"; provision those from your secret manager (deploy/README.md).
# Needs: openssl (and kubectl for --apply).
set -euo pipefail

namespace="flashline-dev"
vhost=""
apply=false
rotate=false
kubectl_args=()

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --namespace|-n) namespace="$2"; shift 2 ;;
    --vhost) vhost="$2"; shift 2 ;;
    --context) kubectl_args+=(--context "$2"); shift 2 ;;
    --apply) apply=true; shift ;;
    --rotate) rotate=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
vhost="${vhost:-$namespace}"

case "$namespace" in
  *prod*) echo "refusing namespace '$namespace': production secrets come from the secret manager, not this script" >&2; exit 1 ;;
esac
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }
if $apply; then command -v kubectl >/dev/null || { echo "kubectl is required for --apply" >&2; exit 1; }; fi

SERVICES=(catalog orders cart)
# issuer short name -> channel namespaces its grants may cover (as in libs/auth flashline_auth/dev.py)
declare -A GRANTS=([identity]="" [catalog]="stock" [orders]="order user tenant" [cart]="cart")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077

# existing SECRET KEY -> the decoded value in the cluster, or nothing
existing() {
  $apply && ! $rotate || return 0
  kubectl "${kubectl_args[@]}" -n "$namespace" get secret "$1" -o "jsonpath={.data.${2//./\\.}}" 2>/dev/null \
    | base64 -d 2>/dev/null || true
}

password() {  # SECRET KEY: reuse or make a URL-safe random password
  local value
  value="$(existing "$1" "$2")"
  [ -n "$value" ] || value="$(openssl rand -hex 24)"
  printf '%s' "$value"
}

signing_key() {  # SHORT: writes $work/SHORT.pem (reused, or new: RSA for identity, else Ed25519) and $work/SHORT.kid
  local short="$1" secret="${1}-signing-key"
  [ "$short" = identity ] && secret="dev-identity-signing-key"
  existing "$secret" signing-key.pem > "$work/$short.pem"
  if [ ! -s "$work/$short.pem" ] && [ "$short" = identity ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/$short.pem" 2>/dev/null
  elif [ ! -s "$work/$short.pem" ]; then
    openssl genpkey -algorithm ed25519 -out "$work/$short.pem" 2>/dev/null
  fi
  local kid
  kid="$(existing "$secret" kid)"
  printf '%s' "${kid:-dev-$short-1}" > "$work/$short.kid"
}

b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
b64file() { base64 < "$1" | tr -d '\n'; }

# secret NAME TYPE KEY=VALUE... (VALUE starting with @ is a file)
secret() {
  local name="$1" type="$2"; shift 2
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$namespace"
  printf '  labels:\n    app.kubernetes.io/part-of: flashline\n    app.kubernetes.io/managed-by: dev-secrets.sh\n'
  printf 'type: %s\ndata:\n' "$type"
  local kv key value
  for kv in "$@"; do
    key="${kv%%=*}"; value="${kv#*=}"
    if [ "${value#@}" != "$value" ]; then
      printf '  %s: %s\n' "$key" "$(b64file "${value#@}")"
    else
      printf '  %s: %s\n' "$key" "$(b64 "$value")"
    fi
  done
}

key_alg() {  # FILE: the JWS algorithm of a private key (a reused key keeps its type)
  local text
  text="$(openssl pkey -in "$1" -noout -text 2>/dev/null | head -3)"
  case "$text" in
    *ED25519*) printf 'EdDSA' ;;
    *prime256v1*) printf 'ES256' ;;
    *) printf 'RS256' ;;
  esac
}

json_string() { awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print (NR > 1 ? "\\n" : "") $0 } END { print "\\n" }' "$1"; }

trusted_keys_json() {
  local short first=true ns list
  printf '{"keys": ['
  for short in identity "${SERVICES[@]}"; do
    openssl pkey -in "$work/$short.pem" -pubout -out "$work/$short.pub" 2>/dev/null
    list=""
    for ns in ${GRANTS[$short]}; do list="${list:+$list, }\"$ns\""; done
    $first || printf ','
    first=false
    printf '\n  {"kid": "%s", "iss": "flashline-%s", "alg": "%s", "public_key_pem": "%s", "namespaces": [%s]}' \
      "$(cat "$work/$short.kid")" "$short" "$(key_alg "$work/$short.pem")" "$(json_string "$work/$short.pub")" "$list"
  done
  printf '\n]}\n'
}

render() {
  local svc db_pw mq_pw
  for short in identity "${SERVICES[@]}"; do signing_key "$short"; done

  for svc in "${SERVICES[@]}"; do
    db_pw="$(password "$svc-db-credentials" password)"
    mq_pw="$(password "$svc-rabbitmq-credentials" password)"
    secret "$svc-db-credentials" kubernetes.io/basic-auth "username=$svc" "password=$db_pw"
    secret "$svc-rabbitmq-credentials" Opaque "username=$svc" "password=$mq_pw"
    secret "$svc-runtime" Opaque \
      "database-url=postgresql+asyncpg://$svc:$db_pw@$svc-db-rw:5432/$svc" \
      "amqp-url=amqp://$svc:$mq_pw@rabbitmq:5672/$vhost"
    secret "$svc-signing-key" Opaque "signing-key.pem=@$work/$svc.pem" "kid=$(cat "$work/$svc.kid")"
  done

  mq_pw="$(password push-gateway-rabbitmq-credentials password)"
  secret push-gateway-rabbitmq-credentials Opaque username=push-gateway "password=$mq_pw"
  secret push-gateway-runtime Opaque \
    "amqp-url=amqp://push-gateway:$mq_pw@rabbitmq:5672/$vhost" \
    "admin-api-key=$(password push-gateway-runtime admin-api-key)"
  secret flashline-internal-api-key Opaque \
    "internal-api-key=$(password flashline-internal-api-key internal-api-key)"
  secret dev-identity-signing-key Opaque "signing-key.pem=@$work/identity.pem" \
    "kid=$(cat "$work/identity.kid")" issuer=flashline-identity

  trusted_keys_json > "$work/trusted-keys.json"
  printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flashline-trusted-keys\n  namespace: %s\n' "$namespace"
  printf '  labels:\n    app.kubernetes.io/part-of: flashline\n    app.kubernetes.io/managed-by: dev-secrets.sh\n'
  printf 'data:\n  trusted-keys.json: |\n'
  sed 's/^/    /' "$work/trusted-keys.json"
}

if $apply; then
  render > "$work/objects.yaml"
  kubectl "${kubectl_args[@]}" -n "$namespace" apply -f "$work/objects.yaml"
  if $rotate; then
    echo "rotated: restart the workloads to load the new keys and URLs:" >&2
    echo "  kubectl -n $namespace rollout restart deployment" >&2
  fi
else
  render
fi
