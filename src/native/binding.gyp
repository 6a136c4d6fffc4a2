{
  "targets": [
    {
      "target_name": "directio",
      "sources": ["directio.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    },
    {
      "target_name": "fuse3ll",
      "sources": ["fuse3ll.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11", "<!@(pkg-config --cflags fuse3)"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
