"""Where frames come from: cameras, device paths, IP cameras, videos, images, folders."""
