#!/usr/bin/env bash
# The baseline for bench/docker_start_bench.ts: the docker calls a warm
# `bottle start --detach` makes, as a plain script with nothing else
# (no config, no planning, no CA minting: it reuses a finished bottle's
# bundle config dir). Usage: docker_start_script.sh NAME AGENT_IMAGE BUNDLE_IMAGE CONFIG_DIR TRUST_PEM
set -euo pipefail
name=$1 agent_image=$2 bundle_image=$3 config_dir=$4 trust=$5
logs=$(mktemp -d)
docker network create --driver bridge --label bench.id="$name" --internal "$name-int" >/dev/null
docker network create --driver bridge --label bench.id="$name" "$name-out" >/dev/null
docker run -d --name "$name-bundle" --network "$name-out" --label bench.id="$name" \
  --user "$(id -u):$(id -g)" \
  --mount "type=bind,source=$config_dir,target=/etc/bottle,readonly" \
  --mount "type=bind,source=$logs,target=/var/log/bottle" \
  --security-opt no-new-privileges --cap-drop ALL "$bundle_image" >/dev/null
docker network connect --alias bundle "$name-int" "$name-bundle"
grep -m1 -q '^bottle-bundle: ready$' < <(docker logs --follow "$name-bundle" 2>&1)
docker run -d --name "$name-agent" --network "$name-int" --label bench.id="$name" \
  --user agent --workdir /workspace --cap-drop ALL --security-opt no-new-privileges \
  --pids-limit 1024 --init \
  -e HTTPS_PROXY=http://bundle:3128 -e HTTP_PROXY=http://bundle:3128 \
  "$agent_image" sleep infinity >/dev/null
gw=$(docker network inspect --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$name-int")
printf 'route del default\nroute add prohibit %s/32\n' "$gw" | docker run --rm -i \
  --network "container:$name-agent" --cap-drop ALL --cap-add NET_ADMIN --entrypoint ip "$bundle_image" -batch -
docker cp "$trust" "$name-agent:/usr/local/share/ca-certificates/bottle.crt"
docker exec -u 0 "$name-agent" chmod 0644 /usr/local/share/ca-certificates/bottle.crt
docker exec -i -u 0 "$name-agent" tee -a /etc/ssl/certs/ca-certificates.crt < "$trust" >/dev/null
