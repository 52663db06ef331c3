# A real RTSP stream without MediaMTX. Run with Debian's /usr/bin/python3.
# Usage: rtsp_test_server.py PORT MOUNT
import sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port, mount = (sys.argv[1:] + ["8554", "/cam1"][len(sys.argv[1:]):])[:2]
srv = GstRtspServer.RTSPServer(); srv.set_address("127.0.0.1"); srv.set_service(port)
f = GstRtspServer.RTSPMediaFactory(); f.set_shared(True)
f.set_launch("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=15/1"
             " ! x264enc tune=zerolatency key-int-max=15 ! rtph264pay name=pay0 pt=96 config-interval=1 )")
srv.get_mount_points().add_factory(mount, f); srv.attach(None)
print(f"ready rtsp://127.0.0.1:{port}{mount}", flush=True)
GLib.MainLoop().run()
