#!/bin/sh
# Runs inside the chroot under xvfb-run: opens the plug-in's dialog via batch_dialog.py and answers it
# like a user: first OK with no prompt (the dialog must come back, saying what is missing), then types
# the prompt and presses OK. Saves a screenshot of the second dialog. $1: the work folder.
set -u
out=$1
export HOME=/root GIMP3_DIRECTORY=/root/prof SMARTBRUSH_GIMP_OUT="$out"
timeout -k 5 150 gimp-console-3.0 -i -d -f --batch-interpreter python-fu-eval \
    -b "exec(open('$out/batch_dialog.py').read())" --quit >"$out/gimp.log" 2>&1 &
gimp=$!

# Poll instead of `search --sync`: on a cold start windows come and go, and a search that meets one
# as it closes dies of BadWindow (seen on a first run of a fresh chroot). $1: a window id to skip.
find_dialog() {
    found=""
    tries=0
    while [ -z "$found" ] && [ "$tries" -lt 120 ]; do
        found=$(xdotool search --name '^SmartBrush Fill$' 2>/dev/null | grep -v "^${1:-none}$" | head -n 1)
        [ -z "$found" ] && sleep 0.5
        tries=$((tries + 1))
    done
    echo "$found"
}

first=$(find_dialog)
if [ -z "$first" ]; then
    echo "dialog_session: the dialog never appeared" >&2
    wait "$gimp"
    exit 3
fi
sleep 2  # let it finish drawing
xdotool windowfocus --sync "$first"
xdotool key alt+o  # OK with an empty prompt
echo 1 >"$out/dialogs"

second=$(find_dialog "$first")
if [ -z "$second" ]; then
    echo "dialog_session: the dialog did not come back after a refused OK" >&2
    wait "$gimp"
    exit 4
fi
echo 2 >"$out/dialogs"
sleep 2
xdotool windowfocus --sync "$second"
xdotool key alt+p  # the _Prompt label's mnemonic: focus its text box
xdotool type --delay 20 "a red ball"
sleep 1
import -window "$second" "$out/dialog.png"
xdotool key alt+o  # the dialog's _OK button
wait "$gimp"
echo "gimp exit $?"
