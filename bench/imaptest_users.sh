# Sourced by bench/side_by_side.sh and bench/ab_imaptest.sh: once a `duck serve` with
# its API on 127.0.0.1:18080 is starting, wait until it answers, then create the 20
# users imaptest logs in as (testuser1@example.com .. testuser20@example.com, "pass").
imaptest_users() {
  for _ in $(seq 1 120); do
    curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/health 2>/dev/null \
      | grep -q 200 && break
    sleep 1
  done
  for i in $(seq 1 20); do
    curl -s -X POST http://127.0.0.1:18080/users -H 'Content-Type: application/json' \
      -d "{\"username\":\"testuser$i@example.com\",\"password\":\"pass\"}" >/dev/null
  done
}
