{
  "targets": [
    {
      "target_name": "ct_native",
      "sources": ["native/addon.cc", "native/interfaces.cc", "native/parse.cc", "native/privilege.cc", "native/reader.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra", "-fexceptions", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fexceptions", "-fvisibility=hidden"],
      "ldflags": ["-Wl,--version-script=<(module_root_dir)/native/exports.map"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"]
    }
  ]
}
