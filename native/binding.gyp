{
  "targets": [
    {
      "target_name": "tulipwire_mac",
      "sources": ["src/mac.c"],
      "cflags": ["-O3", "-Wall", "-Wno-deprecated-declarations"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-Wno-deprecated-declarations"] }
    }
  ]
}
