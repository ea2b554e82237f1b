#!/usr/bin/python3
"""A live RTSP test source for ferrocast's RTSP pull proxy (GStreamer's gst-rtsp-server).

Serves a live test pattern (320x240, 25 fps, a keyframe every 25 frames) plus a test
tone at rtsp://127.0.0.1:PORT/PATH to any number of clients: the media is shared, so
every client sees the same pipeline, and RTP may go over UDP or be interleaved in the
RTSP TCP connection, as the client asks.

    /usr/bin/python3 tests/rtsp/rtsp_server.py --port 0 --path /cam \
        [--codec h264|h265] [--audio aac|pcma|pcmu|opus|none] [--auth user:pass]

With --port 0 the OS picks a free port. Once listening it prints
"READY rtsp://127.0.0.1:PORT/PATH" on stdout (flushed) and runs until SIGTERM or SIGINT.
--auth requires HTTP Digest authentication (RFC 2617, as RTSP uses it) for every
request; a wrong password gets 401.

Debian packages (bookworm): python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-base (videotestsrc, audiotestsrc, opusenc)
gstreamer1.0-plugins-good (RTP payloaders, alawenc/mulawenc)
gstreamer1.0-plugins-ugly (x264enc) gstreamer1.0-plugins-bad (x265enc, voaacenc).
gstreamer1.0-libav (avenc_aac) is used for AAC only when voaacenc is missing.
Run it with the system interpreter (/usr/bin/python3): the GObject bindings are
Debian packages, not pip ones.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

WIDTH, HEIGHT, FPS = 320, 240, 25


def have(element):
    return Gst.ElementFactory.find(element) is not None


def video_branch(codec):
    raw = (
        f"videotestsrc is-live=true pattern=ball ! "
        f"video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1 ! videoconvert ! "
    )
    if codec == "h264":
        # No B-frames (typical of cameras); SPS/PPS with every IDR (config-interval=-1)
        # so a client that joins the shared media late can decode at once.
        return raw + (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={FPS} bframes=0 ! "
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    if codec == "h265":
        return raw + (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={FPS} ! "
            "video/x-h265,profile=main ! h265parse ! "
            "rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    raise ValueError(codec)


def audio_branch(audio):
    src = "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
    if audio == "none":
        return ""
    if audio == "aac":
        enc = "voaacenc bitrate=64000" if have("voaacenc") else "avenc_aac bitrate=64000"
        return src + (
            f"audio/x-raw,rate=44100,channels=1 ! {enc} ! aacparse ! "
            "rtpmp4gpay name=pay1 pt=97"
        )
    if audio == "pcma":
        return src + "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    if audio == "pcmu":
        return src + "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
    if audio == "opus":
        return src + "audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay name=pay1 pt=98"
    raise ValueError(audio)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8554, help="0 picks a free port")
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--codec", choices=["h264", "h265"], default="h264")
    ap.add_argument("--audio", choices=["aac", "pcma", "pcmu", "opus", "none"], default="aac")
    ap.add_argument("--auth", metavar="USER:PASS", help="require Digest authentication")
    args = ap.parse_args()

    Gst.init(None)
    for element in ["x264enc" if args.codec == "h264" else "x265enc"]:
        if not have(element):
            sys.exit(f"GStreamer element {element} is missing (see the package list above)")
    if args.audio == "aac" and not (have("voaacenc") or have("avenc_aac")):
        sys.exit("no AAC encoder (voaacenc or avenc_aac) is installed")

    path = args.path if args.path.startswith("/") else "/" + args.path
    launch = f"( {video_branch(args.codec)} {audio_branch(args.audio)} )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    # UDP unicast and TCP interleaved, whichever the client asks for.
    factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP)

    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user:
            sys.exit("--auth wants USER:PASS")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, user)
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(user, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(user, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)

    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{path}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
