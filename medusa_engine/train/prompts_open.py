"""A third prompt set for self-distillation ("open"): long, specific, multi-part instructions in the
style of chat benchmarks, each carrying its own material (a persona and a scene, a passage of records
to extract from, a function to debug, a word problem with its numbers, a policy question with a
stance to weigh).

Why: heads trained on the first two sets reach 2.64-2.68 tokens/step at tree 64 on their held-out
answers but 2.12-2.46 on MT-Bench, whose prompts ask for open compositions (outlines, persuasive
letters, lesson plans, in-character answers, JSON extractions from several records) that the
templated sets ask for rarely. Deterministic; ids `open-<category>-<index>`; no text equals a
prompt of the other sets or an MT-Bench question (tests/test_distill.py checks both).
"""
from __future__ import annotations

import random

from .prompts import TABLES, N, Prompt, _fill, _passage, _t, draw_distinct, money

PER_CATEGORY = 800

PRODUCTS = _t("two electric cars|two budget laptops|three streaming services|two fitness trackers|two e-readers|"
              "two video game consoles|three project-management apps|two noise-cancelling headphones|"
              "two robot vacuums|three meal-kit services|two programming languages for beginners|two cloud storage plans")
AUDIENCES = _t("busy parents|first-year university students|retired teachers|small-business owners|teenagers|"
               "nurses on night shifts|remote software developers|people new to the city|amateur gardeners|"
               "members of a book club|volunteers at an animal shelter|high school science teachers")
ROLES = _t("a seasoned ship captain|a medieval blacksmith|a patient kindergarten teacher|a witty stand-up comedian|"
           "a calm airline pilot|a strict but fair football coach|a curious astronaut on the Moon|a Victorian detective|"
           "a friendly librarian|a grumpy old wizard|a travel guide in {city}|a chef who runs a tiny bistro|"
           "a personal finance advisor|a career counselor|a museum curator|a park ranger|a fitness coach|"
           "a startup founder pitching to investors|a nutritionist|a veterinarian|a sommelier|a city tour bus driver|"
           "a marine biologist|a lighthouse keeper|a news anchor|a time traveler from the year 2300")
PERSONAS = _t("{person}|Sherlock Holmes|a pirate captain|Hermione Granger|a Shakespearean actor|Albert Einstein|"
              "Mary Poppins|a sports commentator|a noir private eye|Captain Nemo|a 1920s radio host|a wise tortoise")
TOPICS = _t("remote work|social media and teenagers|electric scooters in cities|four-day work weeks|homework|"
            "nuclear power|space tourism|universal basic income|standardized testing|plastic bans|fast fashion|"
            "artificial intelligence in schools|public libraries|tipping culture|self-driving cars|urban gardening|"
            "learning a second language|video games|zoos|cashless payments|working from cafés|online dating")
FIELDS = _t("renewable energy|public health|archaeology|ocean science|robotics|urban planning|linguistics|"
            "astronomy|genetics|sleep research|battery technology|climate science|materials science|neuroscience")


MONTHS3 = _t("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


def _company_rows(r: random.Random) -> list[str]:
    year = r.randint(2018, 2024)
    return [f"{c} Ltd, led by CEO {n}, reported revenue of ${r.randint(5, 400)} million and a profit of "
            f"${r.randint(1, 90)} million in {year}." for c, n in
            zip(r.sample(_t("Alder|Birchwood|Cobalt|Dunmore|Everline|Foxglove|Granite|Harbor|Ivory|Juniper"), 3),
                r.sample(TABLES["name"], 3))]


def _price_rows(r: random.Random) -> list[str]:
    return [f"{r.choice(MONTHS3)} {r.randint(1, 28)}: opened at {money(20, 300)(r)}, closed at {money(20, 300)(r)}, "
            f"volume {r.randint(1000, 90000)}" for _ in range(3)]


def _book_rows(r: random.Random) -> list[str]:
    return [f"\"{t}\" by {a} ({r.randint(1890, 2022)}), whose main character {n} {w}." for t, a, n, w in
            zip(r.sample(_t("The Glass Orchard|Salt and Starlight|A Map of Small Rooms|The Winter Clockmaker|"
                            "River of Lanterns|The Quiet Engine|Letters from Vela|The Paper Harbor"), 3),
                r.sample(_t("M. Okonkwo|L. Feld|R. Santos|K. Ito|E. Marsh|J. Varga|T. Haddad|S. Berg"), 3),
                r.sample(TABLES["name"], 3),
                r.sample(_t("searches for a missing sister|runs a failing bookshop|sails around the world|"
                            "solves a village mystery|builds a flying machine|returns home after thirty years"), 3))]


def _review_rows(r: random.Random) -> list[str]:
    return [f"{p}: {s}" for p, s in zip(
        r.sample(_t("the Nova X phone|the Aria tablet|the Pulse watch|the Echo speaker|the Zen laptop|the Orbit camera"), 3),
        r.sample(_t("Stunning screen, but the battery barely lasts a day.|Fast and light; the best purchase I made this year.|"
                    "Average in every way, nothing to complain about, nothing to love.|Great camera, terrible customer support.|"
                    "It stopped working after a month and the refund took weeks.|Solid build and a fair price, "
                    "though the software feels dated."), 3))]


def _lettered(rows: list[str]) -> str:
    return "\n".join(f"{chr(97 + i)}) {row}" for i, row in enumerate(rows))


def _records(r: random.Random) -> dict:
    """Three short records of one kind (companies, prices, books, reviews) to extract, compare or rank."""
    return {"records": _lettered(r.choice([_company_rows, _price_rows, _book_rows, _review_rows])(r))}




def _paragraph(r: random.Random) -> dict:
    """A short paragraph with a few deliberate grammar or spelling errors."""
    n1, n2 = r.sample(TABLES["name"], 2)
    return {"paragraph": r.choice([
        f"{n1} and me was going to the market yesterday, but we forgets our bags at home so we has to buy new ones. "
        f"The prices was higher then last week.",
        f"Their going to {r.choice(TABLES['city'])} next summer, and {n2} say it's the most beautifullest city "
        f"he have ever seen. I doesn't agree with him.",
        f"The team have finished it's report, however nobody have read it yet because the deadline were moved "
        f"to {r.choice(MONTHS3)}.",
        f"Me and {n1} has been learning to cook, yesterday we maked a soup that were to salty for anyone to eat."])}


def _function(r: random.Random) -> dict:
    """A short Python function with one bug, to find and fix."""
    k = r.randint(2, 5)
    return {"code": r.choice([
        "def second_largest(xs):\n    xs.sort()\n    return xs[1]",
        "def merge_sorted(a, b):\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n"
        "        if a[i] < b[j]:\n            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n"
        "    return out",
        "def is_palindrome(s):\n    return s == s.reverse()",
        f"def chunks(xs, n={k}):\n    return [xs[i:i + n] for i in range(0, len(xs) - n, n)]",
        "def binary_search(xs, target):\n    lo, hi = 0, len(xs)\n    while lo < hi:\n        mid = (lo + hi) // 2\n"
        "        if xs[mid] < target:\n            lo = mid\n        else:\n            hi = mid\n    return lo",
        "def word_count(text):\n    counts = dict()\n    for w in text.split():\n        counts[w] += 1\n    return counts",
        f"def moving_average(xs, k={k}):\n    return [sum(xs[i:i + k]) / k for i in range(len(xs))]",
        "def flatten(nested):\n    out = []\n    for x in nested:\n        if isinstance(x, list):\n"
        "            out.append(flatten(x))\n        else:\n            out.append(x)\n    return out"])}


def _purchase(r: random.Random) -> dict:
    items = r.sample(_t("notebooks|novels|board games|paint sets|phone cases|water bottles|plant pots|scarves"), 3)
    parts = [f"{r.randint(2, 9)} {it} at ${r.randint(3, 45)} each" for it in items]
    return {"purchase": ", ".join(parts[:-1]) + " and " + parts[-1]}


def _poly(r: random.Random) -> dict:
    a, b, c, d = r.randint(2, 6), r.randint(1, 9), r.randint(1, 20), r.randint(1, 4)
    return {"f": f"{a}x^3 - {b}x + {c}" if r.random() < 0.5 else f"{a}x^2 + {b}x - {c}", "x0": str(d)}


def _triangle(r: random.Random) -> dict:
    pts = [(0, 0), (r.randint(1, 8), r.randint(-4, 4)), (r.randint(-5, 5), r.randint(2, 9))]
    return {"pts": ", ".join(f"({x}, {y})" for x, y in pts)}


def _relations(r: random.Random) -> dict:
    a, b, c, d = r.sample(TABLES["name"], 4)
    return {"facts": r.choice([f"{a} is the mother of {b}. {b} is the sister of {c}. {c} is the father of {d}.",
                               f"{a} is taller than {b}. {c} is shorter than {b}. {d} is taller than {a}.",
                               f"{a} sits to the left of {b}. {c} sits to the right of {b}. {d} sits between {a} and {b}.",
                               f"{a} finished before {b} but after {c}. {d} finished last."]),
            "who": r.choice([a, b, c, d])}


OPEN_TEMPLATES: dict[str, list[tuple[str, dict]]] = {
    "writing": [
        ("Write a blog post comparing {products}. Start with an outline of the subheadings, then write the "
         "introduction and the conclusion.", {"products": PRODUCTS}),
        ("Draft a professional email to {recipient} asking for feedback on {doc}. Ask specifically about {aspect}, "
         "and keep it short and polite.", {
             "recipient": _t("my supervisor|the head of finance|our design lead|a senior colleague|my thesis advisor"),
             "doc": _t("the quarterly sales report|my project proposal|the new onboarding guide|our grant application|"
                       "the draft of the annual budget|the user research summary"),
             "aspect": _t("the data analysis|the conclusions|the structure and clarity|the charts|the budget figures")}),
        ("Write a persuasive letter to {audience_one} convincing them to {action}. Use at least three arguments and "
         "answer one likely objection.", {
             "audience_one": _t("my cautious uncle|a friend who hates exercise|the school board|my city council|"
                                "a neighbor who never recycles|my shy coworker"),
             "action": _t("try a week of cycling to work|volunteer at the local food bank|join a community choir|"
                          "plant trees along our street|speak at the next town meeting|take a cooking class with me")}),
        ("Describe {place} in one vivid paragraph, using details of sight, sound and smell.", {
            "place": _t("a crowded night market|a quiet mountain cabin at dawn|a train station during a storm|"
                        "a busy hospital corridor|an old bookshop|a fishing harbor at sunrise|a school cafeteria at noon|"
                        "a desert town at midday|a carnival at closing time|a greenhouse in winter")}),
        ("Write the opening paragraph of a short story in which {premise}.", {
            "premise": _t("a character discovers that every clock in town has stopped except theirs|"
                          "a baker receives a letter addressed to someone who died a century ago|"
                          "the moon appears twice in the sky one night|a child finds a door that was not there yesterday|"
                          "a robot applies for a job as a gardener|a village wakes up speaking a language nobody knows")}),
        ("Create a catchy headline and a short subtitle for an article about {news} in {field}, accurate and not "
         "overhyped. Offer three options.", {
             "news": _t("a new discovery|a surprising study|a promising prototype|a record-breaking experiment"),
             "field": FIELDS}),
        ("Edit the following paragraph to correct its grammar and spelling, then list the changes you made:\n"
         "{paragraph}", {"paragraph": _paragraph}),
        ("Write a short speech for {occasion} that is warm, under 250 words, and ends with a toast.", {
            "occasion": _t("my sister's graduation|a colleague's farewell party|our company's tenth anniversary|"
                           "a friend's 40th birthday|the opening of a community garden|a retirement dinner")}),
        ("Write a product description for {product} aimed at {audiences}, highlighting three benefits.", {
            "product": _t("a solar-powered phone charger|a reusable notebook|a smart water bottle|a foldable e-bike|"
                          "a noise-cancelling sleep mask|a compact herb garden|a language-learning app"),
            "audiences": AUDIENCES}),
    ],
    "roleplay": [
        ("Pretend you are {persona} for the rest of this conversation, and speak the way they would. First "
         "question: {q}", {"persona": PERSONAS,
                            "q": _t("What do you think of smartphones?|How should I spend my weekend?|"
                                    "What is the secret to a happy life?|Why should anyone learn history?|"
                                    "What would you change about the modern world?|How do I deal with a difficult boss?")}),
        ("Act as {role}. I will describe a situation and you will give me your advice. My first situation: {sit}", {
            "role": _t("a relationship coach|a career mentor|a personal trainer|a financial planner|a study coach|"
                       "a travel agent|an interior designer|a parenting expert"),
            "sit": _t("my roommate and I argue about chores every week.|I want to change careers at forty.|"
                      "I have three exams in five days.|I have $2,000 saved and no plan for it.|"
                      "my small apartment feels cluttered and dark.|my teenager refuses to put the phone down.|"
                      "I want to visit {country} for ten days on a budget.")}),
        ("Imagine you are {role}. Describe your typical day, the hardest part of your work, and one story you "
         "tell everyone.", {"role": ROLES}),
        ("You are {role}, and a nervous newcomer asks you for tips on their first week. Stay in character and "
         "give them five pieces of advice.", {"role": ROLES}),
        ("Picture yourself as {thing}. Describe how you feel when {moment}.", {
            "thing": _t("a 300-year-old oak tree|a lighthouse on a lonely coast|an abandoned amusement park|"
                        "a library book that nobody has borrowed in years|a river flowing through a city|"
                        "the last leaf on a tree in autumn|a robot in a museum"),
            "moment": _t("a group of children arrives|a storm is coming|someone finally notices you|"
                         "builders arrive with plans to change everything|the seasons change")}),
        ("Take on the role of an English tutor: correct and improve the following sentence, then explain your "
         "corrections simply: \"{sentence}\"", {"sentence": _t(
             "Yesterday I have went to the cinema with my friends and we was very enjoying.|"
             "She don't know nothing about the meeting that happen tomorrow.|"
             "If I would have more time, I will learn the guitar.|"
             "The informations you gave me was very helpfull for my researchs.|"
             "Me and him goes to the gym every days since two years.")}),
        ("Play {role} explaining {concept} to a customer with no technical background, without jargon, "
         "using one everyday analogy.", {"role": _t("a friendly engineer|a science museum guide|a helpful store assistant|"
                                                    "a patient teacher|a talk-show guest expert")}),
        ("You are a detective interviewing a witness about {case}. Write the conversation, with at least six "
         "exchanges, and end with the clue that cracks the case.", {
             "case": _t("a stolen painting|a missing cake at a bakery competition|a cat that vanished from a locked room|"
                        "a prize-winning pumpkin that disappeared|a mysterious midnight phone call")}),
    ],
    "reasoning": [
        ("Read the facts and answer with a short explanation: {facts} What can we say about {who}?", {"facts": _relations}),
        ("In a race, you pass the person in {pos} place. What position are you in now, and what position is the "
         "person you passed in? Explain.", {"pos": _t("third|fifth|last|fourth|second-to-last")}),
        ("{name} has {k} brothers, and each of the brothers has {m} sisters. How many sisters does {name2} have "
         "if {name2} is one of the brothers? Think it through step by step.", {"k": N(2, 5), "m": N(1, 3), "name2": _t("Leo|Max|Omar|Ivan")}),
        ("Each problem has three statements. Based on the first two, is the third true, false, or uncertain?\n"
         "1. The {a} cost more than the {b}.\n2. The {a} cost less than the {c}.\n3. The {c} cost more than both "
         "the {b} and the {a}.", {
             "a": _t("apples|tickets|lamps|shoes|chairs"), "b": _t("pears|coins|cups|socks|pens"),
             "c": _t("melons|books|rugs|coats|desks")}),
        ("A company must decide whether to {decision}. List the strongest argument for and against, say what "
         "evidence would settle it, and give your recommendation.", {
             "decision": _t("let everyone work from home|replace its help desk with a chatbot|open an office in {city}|"
                            "switch to a four-day week|stop selling its oldest product|raise prices by ten percent")}),
        ("{name} is healthy but visits a hospital every {freq}. Give five plausible reasons, from most to least "
         "likely.", {"freq": _t("day|morning|weekend|Tuesday|evening")}),
        ("Which word does not belong with the others, and why: {words}?", {
            "words": _t("wheel, engine, car, steering wheel|petal, stem, flower, leaf|keyboard, computer, mouse, "
                        "screen|page, cover, book, spine|wing, engine, airplane, tail|string, violin, bow, bridge")}),
        ("Standing at sunrise, {name} faces a pole and its shadow falls exactly to the {side}. Which way is "
         "{name} facing? Explain your reasoning.", {"side": _t("left|right|back")}),
        ("Recess aides saw these situations. Which should they report to the principal as possible bullying, and "
         "why?\na) {x}\nb) {y}\nc) {z}", {
             "x": _t("two kids arguing loudly over a ball game|a boy sitting alone reading a book"),
             "y": _t("a group of girls taking another girl's backpack and laughing|three boys surrounding a younger student"),
             "z": _t("friends playing tag and shouting|a student crying after a fall")}),
    ],
    "math": [
        ("Find f({x0}) if f(x) = {f}. Show each step.", {"f": _poly}),
        ("The vertices of a triangle are {pts}. What is its area? Explain the method.", {"pts": _triangle}),
        ("{name} bought {purchase}. What was the total cost, and what would it be with a {p}% discount?", {
            "purchase": _purchase, "p": _t("10|15|20|25")}),
        ("A startup spends ${a} on marketing in its first year and then {change} each year. How much does it "
         "spend in total over {n} years?", {"a": _t("6000|8000|10000|12000"),
                                            "change": _t("half as much|twice as much|10% more|25% less"),
                                            "n": _t("three|four|five")}),
        ("A number leaves a remainder of {r} when divided by {d}. What remainder does {k} times the number leave "
         "when divided by {e}?", {"d": _t("6|8|10|12"), "r": _t("1|3|4|5"), "k": _t("2|3|4|5"),
                                "e": _t("3|4|5")}),
        ("How many integers satisfy |x {sign} {a}| < {b}? Explain.", {"sign": _t("+|-"), "a": N(1, 9), "b": N(3, 15)}),
        ("In a survey, {p}% of students like {a}, {q}% like {b}, and {s}% like both. What is the probability "
         "that a random student likes neither?", {"p": N(40, 65), "q": N(30, 50), "s": N(10, 28),
                                                  "a": _t("soccer|chess|painting|science"),
                                                  "b": _t("music|drama|coding|history")}),
        ("Rolling two dice, what is the probability of a total {cond}? Show the counting.", {
            "cond": _t("of at least 4|that is even|greater than 9|of exactly 7|that is a prime number|below 6")}),
        ("A bus starts with some people. At the first stop, {h} get off and {a} get on; at the second stop, "
         "{h2} get off and {b} get on. {t} people are now on board. How many were there at the start?", {
             "h": _t("half of them|a third of them|5|8"), "a": N(2, 9), "h2": _t("half|6|4|a quarter"),
             "b": N(3, 12), "t": N(20, 40)}),
        ("If x + y = {s}z and xy = {p}z^2, express x - y in terms of z.", {"s": _t("4|5|6"), "p": _t("3|4|6")}),
    ],
    "coding": [
        ("Develop a {lang} program that {task}. Explain how it works.", {
            "task": _t("reads all text files in a folder and prints the five most common words|"
                       "finds duplicate files by content in a directory|parses a CSV of expenses and prints a total "
                       "per category|checks whether every bracket in a string is balanced|prints the nth Fibonacci "
                       "number using dynamic programming|merges overlapping time intervals|validates email addresses "
                       "with a simple pattern|simulates a queue at a bank counter")}),
        ("Here is a Python function. Can you find the bug, explain it, and give a fixed version?\n```\n{code}\n```",
         {"code": _function}),
        ("Implement a function to {algo} in {lang}, and state its time and space complexity.", {
            "algo": _t("find the majority element with the Boyer-Moore voting algorithm|find the kth smallest element "
                       "of two sorted lists|return the longest common prefix of a list of strings|detect a cycle in a "
                       "linked list|rotate a matrix by 90 degrees|find the lowest common ancestor in a binary search "
                       "tree|compute the edit distance of two strings|find all permutations of a string")}),
        ("Write a simple web page in HTML and JavaScript where {feature}.", {
            "feature": _t("clicking a button shows a random quote from a list of five|a counter goes up and down with "
                          "two buttons|a to-do list lets you add and remove items|a timer counts down from one minute|"
                          "the background color changes every time you click|a form checks that a password is long enough")}),
        ("Write a SQL query that {q}, given a table orders(id, customer, amount, created_at). Explain it.", {
            "q": _t("returns each customer's total spending|finds the three largest orders of last month|"
                    "counts orders per day|lists customers who ordered more than five times|"
                    "finds the average order amount per customer")}),
        ("Explain the difference between {a} and {b} in {lang}, with a short code example of each.", {
            "a": _t("a list|a process|recursion|an interface|pass by value|a stack"),
            "b": _t("a tuple|a thread|iteration|an abstract class|pass by reference|a queue")}),
        ("Write a {lang} class for {thing} with methods to {m1} and to {m2}, and show it in use.", {
            "thing": _t("a library's book loans|a bank account|a shopping cart|a parking garage|a music playlist|"
                        "a to-do list|a deck of cards|a thermostat|an inventory of a small shop"),
            "m1": _t("add an item|check the current state|undo the last change|save it to a file"),
            "m2": _t("remove an item|print a summary|reset everything|find the most recent entry")}),
        ("Here is a {lang} task: {task2}. Write the code and then explain what would change if the input were "
         "{scale}.", {"task2": _t("count the vowels in a string|return the second largest number in a list|"
                                  "group words that are anagrams|check whether a number is prime|"
                                  "compress a string like aaabb into a3b2|find the missing number in 1..n"),
                      "scale": _t("a million items long|empty|read from a file|streamed one item at a time")}),
        ("Write unit tests in {lang} for a function that {spec}. Cover the edge cases.", {
            "spec": _t("checks whether a year is a leap year|reverses the words in a sentence|converts Celsius to "
                       "Fahrenheit|returns the largest of three numbers|removes duplicates from a list")}),
    ],
    "extraction": [
        ("From the records below, extract {what}. Return the result as {fmt}.\n{records}", {
            "records": _records, "what": _t("every name and number|the key facts of each line|"
                                            "the highest and lowest values with their labels|each item's main subject"),
            "fmt": _t("JSON|a Markdown table|CSV|one line per record")}),
        ("Rate each of the following reviews on a scale of 1 to 5, and return the ratings as a JSON array.\n{records}",
         {"records": _records}),
        ("Identify the people, organizations, places and dates in this text, and return them as a JSON "
         "dictionary with one key per type:\n{passage}", {"passage": _passage}),
        ("Read the text below and answer: {q}\n{passage}", {
            "passage": _passage, "q": _t("who is involved, and what happens next?|what are the exact dates and "
                                         "amounts mentioned?|summarize it in one sentence, then list the details.")}),
        ("Sort each of these questions into one of the categories Literature, History, Science or Art, one "
         "category per line:\n1. {q1}\n2. {q2}\n3. {q3}\n4. {q4}", {
             "q1": _t("What themes run through {person}'s work?|Why did {event} begin?"),
             "q2": _t("How does {concept} work?|What causes {concept}?"),
             "q3": _t("What makes impressionist paintings distinctive?|How did Renaissance sculptors work with marble?"),
             "q4": _t("Which novel first used a stream-of-consciousness narrator?|What were the results of {event}?")}),
        ("Extract every company, its CEO and its profit from these lines, then say which company was the most "
         "profitable:\n{records}", {"records": lambda r: _lettered(_company_rows(r))}),
        ("Count how many times the words \"{w1}\", \"{w2}\" and \"{w3}\" appear in the text below, and give the "
         "result as word, count lines:\n{passage}", {"passage": _passage, "w1": _t("the|a|and"), "w2": _t("in|at|of"),
                                                    "w3": _t("is|will|by")}),
    ],
    "stem": [
        ("In {field}, what is {concept}, and how does it connect to everyday life? Give two examples.", {"field": FIELDS}),
        ("Outline the main stages of {concept}, including where each takes place and what goes in and comes out.", {}),
        ("A satellite in a circular orbit around {body} {change}. What happens to its orbital radius and period? "
         "Justify with the laws of physics.", {"body": _t("the Earth|Mars|the Moon"),
                                             "change": _t("slows down|speeds up|loses some mass|is moved to a higher orbit")}),
        ("Describe the reaction when {reaction}, write the balanced equation, and say what you would observe.", {
            "reaction": _t("calcium carbonate meets hydrochloric acid|sodium reacts with water|methane burns in oxygen|"
                           "iron rusts in moist air|baking soda is mixed with vinegar|hydrogen peroxide decomposes")}),
        ("You are designing {system}. Describe the key components and considerations, and give a five-step plan.", {
            "system": _t("a solar water heater for a house|a rainwater collection system for a school|"
                         "a small wind turbine for a farm|a bike-sharing network for {city}|"
                         "a flood warning system for a river town|an energy-efficient greenhouse")}),
        ("Explain the difference between {a} and {b}, the criteria you used to tell them apart, and one real-world "
         "example of each.", {"a": _t("exothermic reactions|mitosis|weather|viruses|speed|renewable energy"),
                              "b": _t("endothermic reactions|meiosis|climate|bacteria|velocity|fossil fuels")}),
        ("Explain machine learning to {audiences}, and describe the difference between supervised, unsupervised "
         "and reinforcement learning with one example each.", {"audiences": AUDIENCES}),
        ("What would happen to life on Earth if {what}? Discuss three consequences scientifically.", {
            "what": _t("the Moon disappeared|the oceans were twice as salty|the day lasted 48 hours|"
                       "insects vanished|the Earth's axis had no tilt")}),
    ],
    "humanities": [
        ("Discuss how {idea} shapes {area} today, and compare two countries' approaches with examples.", {
            "area": _t("economic policy|education|law|public debate|international relations")}),
        ("Create a lesson plan that uses {method} to teach {event} to {grade}. Duration: {k} class periods of "
         "45 minutes.", {"method": _t("drama and role-play|debate|a museum-style exhibit|storytelling|a mock trial"),
                         "grade": _t("grade 7|grade 9|grade 11|adult learners"), "k": _t("2|3|4")}),
        ("Share five ideas for turning {work} into an interactive experience for children, one per artwork or "
         "theme.", {"work": _t("famous paintings|classic fairy tales|ancient myths|great inventions|historic speeches")}),
        ("Explain {fallacy} and give five examples of how {who} use it.", {
            "fallacy": _t("the base rate fallacy|the straw man argument|the slippery slope|false dilemma|"
                          "appeal to authority|survivorship bias"),
            "who": _t("politicians|advertisers|news headlines|social media influencers")}),
        ("What business etiquette should someone know before working with partners in {country}? List the key norms.", {}),
        ("Recommend five {medium} for someone who wants to understand {event}, with one sentence on each.", {
            "medium": _t("documentaries|books|podcasts|novels|films")}),
        ("Describe the main principles of {topic_h}, and how you would apply them to evaluate an argument about {topic}.", {
            "topic_h": _t("analytical writing|critical thinking|Socratic questioning|fair debate"), "topic": TOPICS}),
        ("How did {person} challenge the ideas of their time? Describe their methods and their lasting influence.", {}),
        ("Explain how {x} and {y} are related, and how governments use policy to influence them.", {
            "x": _t("GDP|inflation|unemployment|interest rates|wages"),
            "y": _t("consumer spending|housing prices|exports|public debt|savings")}),
        ("Write a balanced essay outline on {topic}: an introduction, three arguments on each side, and a conclusion.", {
            "topic": TOPICS}),
    ],
}


def build_open_prompts(per_category: int = PER_CATEGORY, exclude: set[str] = frozenset()) -> list[Prompt]:
    """`per_category` prompts of each category, ids `open-<category>-<index>`, none in `exclude`."""
    return draw_distinct("open", lambda cat, r: _fill(*r.choice(OPEN_TEMPLATES[cat]), r), set(exclude), per_category)
