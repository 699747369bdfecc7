"""`gqa exercise`: check an answer to one of the book's exercises (never revealing it), or, for an
instructor, reveal it."""

from __future__ import annotations

import argparse

from gqa.cli._common import CliError


def cmd_exercise(args: argparse.Namespace) -> int:
    from gqa import exercises

    if args.action == "list":
        for e in exercises.EXERCISES.values():
            print(f"{e.id:5} {e.chapter:17} {e.minutes:>4g} min  {e.kind:8} {e.summary}")
        return 0
    if not args.id:
        raise CliError(f"`gqa exercise {args.action}` needs an exercise id (see `gqa exercise list`)")
    exercise = exercises.get(args.id)
    if args.action == "answer":
        if not args.instructor:
            raise CliError(f"answers are for instructors: `gqa exercise answer {exercise.id} --instructor`; "
                           f"check yours with `gqa exercise check {exercise.id} YOUR_ANSWER`")
        print(f"{exercise.id}: {exercises.format_answer(exercise)}")
        return 0
    if args.answer is None:
        raise CliError(f"`gqa exercise check {exercise.id}` needs your answer, "
                       f"e.g. `gqa exercise check {exercise.id} 42`")
    ok, verdict = exercise.check(args.answer)
    print(f"{exercise.id}: {verdict}")
    return 0 if ok else 1


def add_exercise(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exercise", help="check your answer to one of the book's exercises",
        description="Each chapter of the book ends with exercises: numeric ones and a conceptual question "
                    "(multiple choice, answered by its letter). `gqa exercise check 1.1 122000` says whether an "
                    "answer is right (exit 0) or not yet (exit 1, with 'too high' or 'too low' for a number) and "
                    "never prints the answer; `gqa exercise answer 1.1 --instructor` shows the answer the "
                    "library computes; `gqa exercise list` lists them with their times.")
    p.add_argument("action", choices=("list", "check", "answer"))
    p.add_argument("id", nargs="?", help="exercise id as the chapter prints it, e.g. 1.1")
    p.add_argument("answer", nargs="?", help="your answer: a number (commas allowed), a word, or a letter (a-d)")
    p.add_argument("--instructor", action="store_true", help="with `answer`: reveal the answer (for instructors)")
    p.set_defaults(func=cmd_exercise)
