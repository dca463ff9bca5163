"""Fail when galaxy-importer reported an error or a warning about the collection.

galaxy-importer exits 0 on many problems (a module whose documentation does not parse, an
ansible-lint finding, a missing changelog) and only prints them. Galaxy shows those to users, so
`make build` treats each one as a failure and lists them.
"""
import re
import sys


def main(path):
    problems = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            if line.startswith("{"):
                break  # the JSON result follows; its text repeats docs, not findings
            if re.match(r"^(ERROR|WARNING)\b", line):
                problems.append(line.rstrip())
    if problems:
        print("galaxy-importer reported %d problem(s):" % len(problems))
        for problem in problems:
            print("  " + problem)
        return 1
    print("galaxy-importer: collection accepted, no errors or warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
