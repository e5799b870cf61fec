#!/bin/sh
# Runs inside the chroot under xvfb-run: opens the plug-in's dialog via batch_dialog.py, answers it
# like a user (types the prompt, presses OK) and saves a screenshot of it. $1: the work folder.
set -u
out=$1
export HOME=/root GIMP3_DIRECTORY=/root/prof SMARTBRUSH_GIMP_OUT="$out"
timeout -k 5 150 gimp-console-3.0 -i -d -f --batch-interpreter python-fu-eval \
    -b "exec(open('$out/batch_dialog.py').read())" --quit >"$out/gimp.log" 2>&1 &
gimp=$!
# Poll instead of `search --sync`: on a cold start windows come and go, and a search that meets one
# as it closes dies of BadWindow (seen on a first run of a fresh chroot).
window=""
tries=0
while [ -z "$window" ] && [ "$tries" -lt 120 ]; do
    window=$(xdotool search --name '^SmartBrush Fill$' 2>/dev/null | head -n 1)
    [ -z "$window" ] && sleep 0.5
    tries=$((tries + 1))
done
if [ -z "$window" ]; then
    echo "dialog_session: the dialog never appeared" >&2
    wait "$gimp"
    exit 3
fi
sleep 2  # let it finish drawing
xdotool windowfocus --sync "$window"
xdotool key alt+p  # the _Prompt label's mnemonic: focus its text box
xdotool type --delay 20 "a red ball"
sleep 1
import -window "$window" "$out/dialog.png"
xdotool key alt+o  # the dialog's _OK button
wait "$gimp"
echo "gimp exit $?"
