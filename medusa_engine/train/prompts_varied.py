"""A second, more varied prompt set for self-distillation ("varied"): the same categories, but each
instruction is reframed (who asks, for whom, why) and constrained (length, format, tone, structure),
and a share comes from open, multi-part templates that the first set lacks.

Why: heads trained on the first set's answers reach 36-51% head-1 top-1 on its held-out prompts
but ~30% on MT-Bench, whose prompts share none of its templates; answers to reframed and
constrained prompts vary in form (tables, letters, steps, short and long), not only in topic.
Deterministic; ids `varied-<category>-<index>`; no text equals a prompt of the first set or an
MT-Bench question (tests/test_distill.py checks both).
"""
from __future__ import annotations

import random

from .prompts import TEMPLATES, Prompt, _fill, _t, build_prompts, draw_distinct, pick
from .prompts_open import build_open_prompts

PER_CATEGORY = 800

FRAMES = _t(
    "I'm a high school teacher preparing tomorrow's lesson.|My manager asked me this and I want a good answer.|"
    "I'm studying for an exam next week.|Quick question for a group project.|I'm new to this topic.|"
    "My ten-year-old asked me about this.|I'm writing an article for our community newsletter.|"
    "I only have five minutes to read your answer.|I'm preparing a presentation for my colleagues.|"
    "A friend and I disagree about this.|I'm a retired engineer with plenty of time.|"
    "English is my second language, so please keep it clear.|I'm putting together a workshop for beginners.|"
    "This is for a podcast episode I'm scripting.|I run a small business and need this for work.|"
    "I'm a university student in my first year.|I want to explain this to my grandparents.|"
    "Help me out, please.|I've been curious about this for a while.|I'm making notes for a study group.")
ASKS = _t("Please help:|Task:|Here is what I need:|Could you do the following?|Request:")
CONSTRAINTS = _t(
    "Keep it under 100 words.|Answer in at most five sentences.|Use a numbered list.|Use bullet points.|"
    "Include one concrete example.|End with a one-sentence summary.|Start with a short title.|"
    "Use a friendly, encouraging tone.|Use a formal tone.|Avoid jargon.|Explain it step by step.|"
    "Give two alternatives and say which you prefer.|Format the key points as a Markdown table.|"
    "Write it for a complete beginner.|Write it for an expert audience.|Add a short list of common mistakes.|"
    "Finish with a question for the reader.|Be concise but complete.|Use headings for each part.|"
    "Include an analogy from everyday life.|Mention one limitation or caveat.|Keep each paragraph short.|"
    "Make it fun to read.|Add three follow-up questions I could explore.|Write about 200 words.|"
    "Use simple words a child would understand.|Give your answer first, then the explanation.|"
    "Point out anything surprising.|Compare it with something familiar.|Write in the second person.")

OPEN_TEMPLATES: dict[str, list[tuple[str, dict]]] = {
    "writing": [
        ("Write a {kind} for {occasion}, mentioning {detail}.", {
            "kind": _t("short speech|toast|thank-you note|welcome message|farewell message|invitation"),
            "occasion": _t("a colleague's retirement|a friend's wedding|the first day of a coding bootcamp|"
                           "a neighborhood street party|a school graduation|a charity dinner|a team's product launch"),
            "detail": _t("a funny memory|the hard work behind it|what comes next|the people who helped|"
                         "a lesson learned|the weather that day")}),
        ("Compose a travel blog post about {n} days in {city}, covering food, sights and one surprise.",
         {"n": _t("two|three|four|five")}),
        ("Write a dialogue between {name} and a {other} about {subject}.",
         {"other": _t("stranger on a train|grumpy neighbor|curious child|time traveler|talking cat|shopkeeper")}),
        ("Write a cover letter paragraph for a {job} position that highlights {strength}.", {
            "job": _t("barista|junior developer|museum guide|nurse|sales assistant|research intern|graphic designer"),
            "strength": _t("teamwork|attention to detail|a passion for learning|customer focus|problem solving")}),
    ],
    "roleplay": [
        ("You are {role}. A visitor asks you: \"{q}\" Answer in character.", {
            "role": _t("a medieval blacksmith|a ship captain in 1850|a tour guide in {city}|a wise old tree|"
                       "a detective in 1920s London|a barista on a busy morning|an astronaut on the Moon|"
                       "a museum curator|a grumpy wizard|a personal trainer"),
            "q": _t("What is the hardest part of your day?|What advice would you give me?|"
                    "What should I see first?|How did you get started?|What do you fear most?|"
                    "Can you tell me a story?")}),
        ("Pretend you are {name}'s {rel}. Write what you would say to cheer them up after {bad}.", {
            "rel": _t("best friend|older sister|coach|grandfather|mentor|roommate"),
            "bad": _t("failing a driving test|losing a football final|a rejected job application|a rainy vacation|"
                      "a burnt birthday cake|missing the last train")}),
        ("Act as an interviewer for a {job} role and ask me your first three questions, one at a time.",
         {"job": _t("teacher|software engineer|chef|pilot|journalist|nurse|park ranger")}),
    ],
    "reasoning": [
        ("{name} is older than {name2}, and {name2} is older than {name3}. Who is the youngest, and how do you know?",
         {"names": pick(3, "name", "name", "name2", "name3")}),
        ("If it takes {a} machines {a} minutes to make {a} widgets, how long would {b} machines take to make {b} "
         "widgets? Explain.", {"a": _t("3|4|5|6|7"), "b": _t("50|80|100|120")}),
        ("What is a good strategy for {task}? Think about the trade-offs.", {
            "task": _t("choosing between two job offers|planning a week of meals on a budget|"
                       "deciding whether to rent or buy a home|organizing a move to {city}|"
                       "splitting chores among roommates|studying for three exams at once")}),
        ("Find the flaw in this argument: \"{arg}\"", {"arg": _t(
            "Everyone I know likes the movie, so it must be the best movie of the year.|"
            "Ice cream sales and drownings both rise in summer, so ice cream causes drowning.|"
            "If we allow one exception, soon nobody will follow the rules.|"
            "This diet worked for my uncle, so it will work for everyone.|"
            "Nobody has proven it false, so it must be true.")}),
    ],
    "math": [
        ("A rectangle has a perimeter of {p} cm and its length is {k} times its width. Find its area.",
         {"p": _t("24|36|48|60|72|90"), "k": _t("2|3|5")}),
        ("{name} saves ${a} in the first week and ${d} more each week than the week before. How much has "
         "{name} saved after {n} weeks?", {"a": _t("5|10|12|20"), "d": _t("2|3|5"), "n": _t("6|8|10|12")}),
        ("Explain how to compute {what}, and work through one example.", {
            "what": _t("a percentage increase|the mean and median of a list|compound interest|the area of a circle|"
                       "the probability of two independent events|the slope of a line through two points|"
                       "a weighted average|the volume of a cylinder")}),
        ("Solve for x: {a}x + {b} = {c}x - {d}. Show each step.",
         {"a": _t("3|5|7|9"), "b": _t("4|6|11|15"), "c": _t("1|2|4"), "d": _t("2|8|10|13")}),
    ],
    "coding": [
        ("In {lang}, write a function that {does}, with a short explanation and one test.", {
            "does": _t("checks whether a string is a palindrome|merges two sorted lists|counts word frequencies "
                       "in a text|returns the n-th prime number|removes duplicates while keeping order|"
                       "converts Roman numerals to integers|validates an email address|flattens a nested list|"
                       "finds the longest common prefix of a list of strings|computes a moving average")}),
        ("Explain the difference between {a} in {lang}, with a small code example.", {"a": _t(
            "a list and a tuple|an interface and an abstract class|pass-by-value and pass-by-reference|"
            "synchronous and asynchronous code|a process and a thread|a stack and a queue|"
            "shallow and deep copies|compile-time and run-time errors")}),
        ("Review this approach: I store user passwords {how}. What would you change and why?", {"how": _t(
            "in plain text in a database|hashed with MD5|encrypted with a key kept in the same database|"
            "hashed with SHA-256 and no salt")}),
        ("Design a simple {thing}. Describe the data model and the main operations.", {"thing": _t(
            "to-do list app|library lending system|URL shortener|chat room|parking garage tracker|"
            "recipe manager|expense splitter for friends")}),
    ],
    "extraction": [
        ("From the list below, pick out every {what} and return them {fmt}.\n{items}", {
            "what": _t("fruit|city|number|name|color"), "fmt": _t("as a comma-separated line|as JSON|as a bullet list"),
            "items": lambda r: ", ".join(r.sample(_t(
                "Lisbon|banana|42|Maya|purple|Toronto|mango|seven|Oscar|green|17|Osaka|cherry|Rosa|blue|"
                "Dublin|pear|Hiro|3.5|orange"), 10))}),
        ("Turn these notes into a tidy summary with action items: \"{notes}\"", {"notes": _t(
            "meeting mon - budget ok, need new designer, Sam to call vendor, launch maybe june, check legal|"
            "trip plan: flights booked, hotel not yet, Zoe wants museum day, rent car?, pack chargers|"
            "class notes - photosynthesis light + water + co2, chlorophyll, test friday, ask about lab report|"
            "garden: tomatoes need stakes, water twice a week, slugs again, buy compost, plant basil")}),
    ],
    "stem": [
        ("Why {q}? Give the scientific explanation.", {"q": _t(
            "is the sky blue|do we have seasons|does ice float on water|do onions make us cry|"
            "does bread rise|do cats purr|does metal feel colder than wood|do leaves change color in autumn|"
            "can't we see stars during the day|does salt melt ice|do we get goosebumps|is the ocean salty")}),
        ("How does {device} work? Walk through it from input to output.", {"device": _t(
            "a microwave oven|a refrigerator|a touchscreen|GPS navigation|a solar panel|noise-cancelling "
            "headphones|a vaccine|an electric motor|a search engine|a 3D printer|Wi-Fi|a smoke detector")}),
        ("What would a {pro} need to know about {concept}?", {
            "pro": _t("nurse|farmer|software developer|pilot|chef|architect|teacher")}),
    ],
    "humanities": [
        ("Write a short museum label for an exhibit about {event}.", {}),
        ("Imagine a conversation between {person} and {person2} about {idea}. Write a few lines of it.",
         {"people": pick(2, "person", "person", "person2")}),
        ("What can {event} teach us about {today}?", {"today": _t(
            "leadership today|how societies handle crises|the spread of new ideas|economic inequality|"
            "the role of technology in change")}),
        ("Explain the ideas of {person} to someone who has never heard of them.", {}),
    ],
}


def _base_instruction(category: str, r: random.Random) -> str:
    """An instruction from the first set's templates (drawn afresh) or from the open templates."""
    pool = TEMPLATES[category] if r.random() < 0.6 else OPEN_TEMPLATES[category]
    return _fill(*r.choice(pool), r)


def _vary(instruction: str, r: random.Random) -> str:
    """Reframe and/or constrain `instruction`; always at least one of the two."""
    framed, constrained = r.random() < 0.55, r.random() < 0.75
    if not (framed or constrained):
        constrained = True
    parts = []
    if framed:
        parts += [r.choice(FRAMES), r.choice(ASKS)]
    parts.append(instruction)
    if constrained:
        parts += r.sample(CONSTRAINTS, 1 if r.random() < 0.7 else 2)
    sep = "\n" if "\n" in instruction or "```" in instruction else " "
    return sep.join(parts)


def build_varied_prompts(per_category: int = PER_CATEGORY) -> list[Prompt]:
    """`per_category` prompts of each category, ids `varied-<category>-<index>`, none equal to a first-set prompt."""
    return draw_distinct("varied", lambda cat, r: _vary(_base_instruction(cat, r), r),
                         {p.text for p in build_prompts()}, per_category)


def build_open_set() -> list[Prompt]:
    """The third set (prompts_open.py), none equal to a prompt of the first two."""
    return build_open_prompts(exclude={p.text for p in build_prompts() + build_varied_prompts()})


PROMPT_SETS = {"templates": build_prompts, "varied": build_varied_prompts, "open": build_open_set}


def prompt_set_counts(example_ids) -> dict[str, int]:
    """How many of `example_ids` come from each prompt set, told apart by their id: `<set>-<category>-<index>`
    for the named sets (draw_distinct), `<category>-<index>` for the first, templated set."""
    counts: dict[str, int] = {}
    for ex_id in example_ids:
        head = ex_id.split("-", 1)[0]
        name = head if head in PROMPT_SETS else "templates"
        counts[name] = counts.get(name, 0) + 1
    return counts
