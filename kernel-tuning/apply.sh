#!/usr/bin/env bash
# Checks, applies and reverts ringlb's sysctl profiles. Needs only bash, coreutils
# and procps' sysctl.
#
#   apply.sh check PROFILE...            table of key/current/profile/status; exit 0 all met, 3 otherwise
#   apply.sh apply [--dry-run] [--only-net] PROFILE...
#                                        back up current values, write the drop-in, apply, verify
#   apply.sh revert [BACKUP]             restore one backup, or (default) all of them newest first,
#                                        which returns to the values before the first apply; remove the drop-in
#
# Environment: RINGLB_SYSCTL_DROPIN (default /etc/sysctl.d/60-ringlb.conf),
# RINGLB_SYSCTL_STATE_DIR (default /var/lib/ringlb) where backups are kept.
# Keys this kernel lacks are reported and skipped. Applying never lowers a value
# that already exceeds the profile, and a value the kernel refuses rolls back
# everything written so far.
set -eu

DROPIN=${RINGLB_SYSCTL_DROPIN:-/etc/sysctl.d/60-ringlb.conf}
STATE=${RINGLB_SYSCTL_STATE_DIR:-/var/lib/ringlb}

die() { echo "apply.sh: $*" >&2; exit 1; }

# Prints "key<TAB>value<TAB>rule" for every setting in the given profiles. A
# key's rule comes from a `# want=RULE` comment line before it (default max).
parse_profiles() {
    local f line key value rule
    for f in "$@"; do
        [ -r "$f" ] || die "cannot read profile $f"
        rule=max
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in
                '#'*'want='*) rule=${line##*want=}; rule=${rule%%[;[:space:]]*}; continue ;;
                ''|'#'*) continue ;;
            esac
            case "$line" in *'#'*) die "$f: trailing comment after a value (sysctl.d does not allow it): $line" ;; esac
            key=$(echo "${line%%=*}" | tr -d '[:space:]')
            value=$(echo "${line#*=}" | tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//')
            if [ -z "$key" ] || [ "$key" = "$line" ]; then
                die "$f: malformed line: $line"
            fi
            case "$value" in
                ''|*[!0-9\ ]*) die "$f: $key: invalid value \"$value\" (numbers only)" ;;
            esac
            case "$rule" in max|min|exact|range|each) ;; *) die "$f: $key: unknown rule want=$rule" ;; esac
            printf '%s\t%s\t%s\n' "$key" "$value" "$rule"
            rule=max
        done < "$f"
    done
}

current() { sysctl -n "$1" 2>/dev/null | tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//'; }

# meets CURRENT WANTED RULE -> exit 0 when the current value satisfies the profile.
meets() {
    local cur=$1 want=$2 rule=$3
    # shellcheck disable=SC2086
    set -- $cur
    local c1=${1:-0} c2=${2:-0} c3=${3:-0}
    # shellcheck disable=SC2086
    set -- $want
    local w1=${1:-0} w2=${2:-0} w3=${3:-0}
    case "$rule" in
        max) [ "$c1" -ge "$w1" ] ;;
        min) [ "$c1" -le "$w1" ] ;;
        exact) [ "$cur" = "$want" ] ;;
        range) [ "$c1" -le "$w1" ] && [ "$c2" -ge "$w2" ] ;;
        each) [ "$c1" -ge "$w1" ] && [ "$c2" -ge "$w2" ] && [ "$c3" -ge "$w3" ] ;;
    esac
}

# target CURRENT WANTED RULE -> the value to write: the profile's, but never
# lower than what is already there where bigger is better.
target() {
    local cur=$1 want=$2 rule=$3
    # shellcheck disable=SC2086
    set -- $cur
    local c1=${1:-0} c2=${2:-0} c3=${3:-0}
    # shellcheck disable=SC2086
    set -- $want
    local w1=${1:-0} w2=${2:-0} w3=${3:-0}
    max() { if [ "$1" -ge "$2" ]; then echo "$1"; else echo "$2"; fi; }
    min() { if [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }
    case "$rule" in
        max) max "$c1" "$w1" ;;
        min) min "$c1" "$w1" ;;
        exact) echo "$want" ;;
        range) echo "$(min "$c1" "$w1") $(max "$c2" "$w2")" ;;
        each) echo "$(max "$c1" "$w1") $(max "$c2" "$w2") $(max "$c3" "$w3")" ;;
    esac
}

cmd_check() {
    [ $# -gt 0 ] || die "usage: apply.sh check PROFILE..."
    local entries key want rule cur status unmet=0
    entries=$(parse_profiles "$@")
    printf '%-36s %-28s %-28s %s\n' KEY CURRENT PROFILE STATUS
    while IFS="$(printf '\t')" read -r key want rule; do
        cur=$(current "$key")
        if [ -z "$cur" ]; then
            status="missing (not on this kernel; skipped)"
        elif meets "$cur" "$want" "$rule"; then
            status=met
        else
            status="not met (want $rule)"
            unmet=1
        fi
        printf '%-36s %-28s %-28s %s\n' "$key" "${cur:--}" "$want" "$status"
    done <<EOF
$entries
EOF
    [ "$unmet" -eq 0 ] || return 3
}

cmd_apply() {
    local dry=0 only_net=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --dry-run) dry=1 ;;
            --only-net) only_net=1 ;;
            --*) die "unknown option $1" ;;
            *) break ;;
        esac
        shift
    done
    [ $# -gt 0 ] || die "usage: apply.sh apply [--dry-run] [--only-net] PROFILE..."
    if [ "$dry" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
        die "apply needs root (or use --dry-run to see what it would do)"
    fi
    local entries key want rule cur value changes="" dropin="" stamp backup
    entries=$(parse_profiles "$@")
    while IFS="$(printf '\t')" read -r key want rule; do
        case "$key" in net.*) ;; *) [ "$only_net" -eq 1 ] && continue ;; esac
        cur=$(current "$key")
        if [ -z "$cur" ]; then
            echo "skip $key: not on this kernel"
            continue
        fi
        value=$(target "$cur" "$want" "$rule")
        dropin="$dropin$key = $value
"
        if [ "$value" != "$cur" ]; then
            changes="$changes$key	$cur	$value
"
        fi
    done <<EOF
$entries
EOF
    if [ "$dry" -eq 1 ]; then
        echo "dry run: would write $DROPIN:"
        printf '%s' "$dropin" | sed 's/^/  /'
        if [ -z "$changes" ]; then
            echo "dry run: every value already meets the profile; nothing would change"
        else
            printf '%s' "$changes" | while IFS="$(printf '\t')" read -r key cur value; do
                echo "dry run: would set $key: $cur -> $value"
            done
        fi
        return 0
    fi
    if [ -z "$changes" ]; then
        echo "applied 0 change(s): every value already meets the profile"
        return 0
    fi
    mkdir -p "$STATE"
    # Nanoseconds too: two applies in one second must not share a backup.
    stamp=$(date -u +%Y%m%dT%H%M%S.%N)
    backup="$STATE/sysctl-backup-$stamp.conf"
    {
        echo "# ringlb sysctl backup, $stamp: values before apply.sh apply"
        printf '%s' "$changes" | while IFS="$(printf '\t')" read -r key cur value; do
            echo "$key = $cur"
        done
    } > "$backup"
    # Apply one by one; on the first refusal, restore what was written.
    local applied="" failed=""
    while IFS="$(printf '\t')" read -r key cur value; do
        [ -n "$key" ] || continue
        if sysctl -q -w "$key=$value" >/dev/null 2>&1 && [ "$(current "$key")" = "$value" ]; then
            applied="$applied$key	$cur
"
        else
            failed="$key = $value"
            break
        fi
    done <<EOF
$changes
EOF
    if [ -n "$failed" ]; then
        printf '%s' "$applied" | while IFS="$(printf '\t')" read -r key cur; do
            sysctl -q -w "$key=$cur" >/dev/null 2>&1 || echo "apply.sh: could not restore $key = $cur" >&2
        done
        rm -f "$backup"
        die "the kernel refused $failed; nothing was changed"
    fi
    # Keep what earlier applies put in the drop-in for keys this run does not set,
    # so profiles applied one at a time all survive a reboot.
    local kept="" dkey
    if [ -r "$DROPIN" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in ''|'#'*) continue ;; esac
            dkey=$(echo "${line%%=*}" | tr -d '[:space:]')
            printf '%s' "$dropin" | grep -q "^$dkey = " || kept="$kept$line
"
        done < "$DROPIN"
    fi
    mkdir -p "$(dirname "$DROPIN")"
    {
        echo "# Written by ringlb kernel-tuning/apply.sh; backups of previous values in $STATE"
        printf '%s' "$kept"
        printf '%s' "$dropin"
    } > "$DROPIN.tmp" && mv "$DROPIN.tmp" "$DROPIN"
    echo "applied $(printf '%s' "$changes" | grep -c . || true) change(s); drop-in $DROPIN; backup $backup"
}

cmd_revert() {
    [ "$(id -u)" -eq 0 ] || die "revert needs root"
    local backups
    if [ $# -gt 0 ]; then
        [ -r "$1" ] || die "cannot read backup $1"
        backups=$1
    else
        # Newest first, so the oldest backup — the values from before ringlb's
        # first apply — is restored last and wins.
        backups=$(find "$STATE" -maxdepth 1 -name 'sysctl-backup-*.conf' 2>/dev/null | sort -r)
        [ -n "$backups" ] || die "no backup in $STATE"
    fi
    local backup line key value
    for backup in $backups; do
        while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in ''|'#'*) continue ;; esac
            key=$(echo "${line%%=*}" | tr -d '[:space:]')
            value=$(echo "${line#*=}" | sed 's/^ *//; s/ *$//')
            sysctl -q -w "$key=$value" >/dev/null || echo "apply.sh: could not restore $key = $value" >&2
        done < "$backup"
        # A restored backup is done with: a later revert must not replay it.
        mv "$backup" "${backup%.conf}.reverted"
        echo "restored values from $backup"
    done
    rm -f "$DROPIN"
    echo "removed $DROPIN"
}

case "${1:-}" in
    check) shift; cmd_check "$@" ;;
    apply) shift; cmd_apply "$@" ;;
    revert) shift; cmd_revert "$@" ;;
    *) echo "usage: apply.sh {check PROFILE...|apply [--dry-run] [--only-net] PROFILE...|revert [BACKUP]}" >&2; exit 2 ;;
esac
