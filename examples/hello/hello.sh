#!/bin/sh
echo "Hello from a package published by gh-docker-publish."
