#!/usr/bin/env bash
# Regenerates the DEV-ONLY self-signed certificate for localhost / 127.0.0.1 / ::1.
# The gateway embeds these files as its default wss:// certificate; never use them in production
# (the private key is public, it is in the repository).
set -euo pipefail
cd "$(dirname "$0")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout localhost.key -out localhost.crt -days 3650 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth"
echo "wrote $(pwd)/localhost.crt and localhost.key"
