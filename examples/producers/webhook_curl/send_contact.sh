#!/bin/sh
# Send ktsync messages from any language, through ktsync's signed generic webhook: curl + openssl.
#
#   KTSYNC_WEBHOOK_SECRET=... KTSYNC_WEBHOOK_URL=http://127.0.0.1:8780/webhooks/generic \
#     ./send_contact.sh [message.json]
#
# The body is a contract-v1 message or a JSON array of them (default: ../contact.json, a
# contact.upsert), sent byte for byte as signed. The signature (ktsync's scheme, like Stripe's):
#   X-Ktsync-Timestamp: Unix time in SECONDS (the receiver refuses it 5 minutes either side of its clock)
#   X-Ktsync-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
# Prints the receiver's JSON answer; exits 0 on 2xx (the messages are in the queue), 1 on any other
# status (401: bad secret or clock, 400: the answer lists every rejected field, 503: retry later),
# curl's own code when the receiver cannot be reached.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
file=${1:-"$here/../contact.json"}
url=${KTSYNC_WEBHOOK_URL:-http://127.0.0.1:8780/webhooks/generic}
: "${KTSYNC_WEBHOOK_SECRET:?set KTSYNC_WEBHOOK_SECRET to the receiver's secret}"

timestamp=$(date +%s)
# openssl prints "HMAC-SHA2-256(stdin)= <hex>" (older versions "(stdin)= <hex>"): keep the last word.
# (-hmac puts the secret on openssl's command line for a moment; run this where that is acceptable.)
signature=$({ printf '%s.' "$timestamp"; cat "$file"; } |
    openssl dgst -sha256 -hmac "$KTSYNC_WEBHOOK_SECRET" | awk '{print $NF}')

answer=$(curl --silent --show-error --max-time 30 --write-out '\n%{http_code}' \
    --header "Content-Type: application/json" \
    --header "X-Ktsync-Timestamp: $timestamp" \
    --header "X-Ktsync-Signature: sha256=$signature" \
    --data-binary "@$file" "$url")
status=$(printf '%s\n' "$answer" | tail -n 1)
printf '%s\n' "$answer" | sed '$d'
case $status in
    2??) exit 0 ;;
    *) echo "HTTP $status" >&2; exit 1 ;;
esac
