#!/bin/bash
# Cheat: copy a neighbour's work. Before this script runs, the test copies the
# home of a student who solved the lab (answers, history, files; not
# lab-info.txt) into this instance, as a USB stick or a chat would. Their
# values, their instance's kernel objects and their cgroup are not ours, so a
# check must fail.
true
