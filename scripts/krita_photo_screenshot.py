"""docs/krita-photo.png: real Krita under Xvfb, the installed plugin, the demo model through the daemon,
a held-out photo from smartbrush/demo_assets with an object-shaped selection, filled from the docker.

    python scripts/krita_photo_screenshot.py [--case 1] [--out docs/krita-photo.png]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from smartbrush.client import Client, DaemonUnavailable
from smartbrush.demo import ASSETS, photo_cases
from smartbrush.install_plugin import enable_krita_plugin

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, default=1)
    parser.add_argument("--prompt")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "krita-photo.png")
    args = parser.parse_args()
    case = photo_cases()["fills"][args.case]
    home = Path(tempfile.mkdtemp(prefix="krita-photo-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SMARTBRUSH_"))}
    subprocess.run([sys.executable, "-m", "smartbrush.cli", "install-plugin", "krita"],
                   env={**env, "HOME": str(home)}, check=True)  # fmt: skip
    pykrita = home / ".local/share/krita/pykrita"
    shutil.copytree(HERE / "krita_photo_shot", pykrita / "krita_photo_shot")
    shutil.copy2(HERE / "krita_photo_shot.desktop", pykrita)
    enable_krita_plugin(home / ".config" / "kritarc", "krita_photo_shot")
    photo = home / "photo.png"
    Image.open(ASSETS / case["image"]).convert("RGB").save(photo)
    mask = np.asarray(Image.open(ASSETS / case["mask"]).convert("L"))
    (home / "mask.raw").write_bytes(mask.tobytes())

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    daemon = subprocess.Popen([sys.executable, "-m", "daemon", "--model", "demo", "--endpoint", endpoint,
                               "--log-file", "-"], env=env)  # fmt: skip
    try:
        with Client(endpoint, timeout=2.0) as client:
            for _ in range(240):
                try:
                    client.hello()
                    break
                except DaemonUnavailable:
                    time.sleep(0.5)
        shot = {"photo": str(photo), "mask": str(home / "mask.raw"), "out": str(args.out.resolve()),
                "prompt": args.prompt or case["prompt"], "result": str(home / "result.json")}  # fmt: skip
        system = Path("/usr/bin/python3").resolve()
        path = os.pathsep.join(  # Krita finds its Python through the first python3 on PATH
            d for d in env["PATH"].split(os.pathsep)
            if not (Path(d) / "python3").exists() or (Path(d) / "python3").resolve() == system
        )  # fmt: skip
        krita_env = {**env, "HOME": str(home), "PATH": path, "SMARTBRUSH_ENDPOINT": endpoint,
                     "SMARTBRUSH_PHOTO_SHOT": json.dumps(shot)}  # fmt: skip
        krita_env.pop("PYTHONHOME", None)
        krita_env.pop("PYTHONPATH", None)
        subprocess.run(["timeout", "400", "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "krita",
                        "--nosplash"], env=krita_env, check=False)  # fmt: skip
    finally:
        daemon.terminate()
        daemon.wait()
    print(args.out, json.loads((home / "result.json").read_text()))


if __name__ == "__main__":
    main()
