"""rosbag2 tools and ROS message conversion, without ROS (the ``rosbags`` library).

* :func:`make_bag` -- image sequence / video -> camera bag (``semcomp make-bag``)
* :func:`run_bag_bench` -- codecs over a bag topic -> output bag + CSV/JSON/plots
  (``semcomp bench --bag``)
* :mod:`.messages` -- sensor_msgs/Image and CompressedImage <-> numpy

``rosbags`` and OpenCV are imported only when a bag or video is touched.
"""
from .bag_bench import output_topics, run_bag_bench, topic_token
from .make_bag import make_bag

__all__ = ["make_bag", "output_topics", "run_bag_bench", "topic_token"]
