# Sourced by the scripts that start servers: `wait_for FILE PATTERN` prints the first match of
# PATTERN (grep -o) in FILE once the server has written it, waiting up to 5 s; nothing when
# it never comes.
wait_for() {
    local file="$1" pattern="$2" found=""
    for _ in $(seq 1 250); do
        found="$(grep -o "$pattern" "$file" 2>/dev/null | head -1 || true)"
        [ -n "$found" ] && break
        sleep 0.02
    done
    printf '%s' "$found"
}
