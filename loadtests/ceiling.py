"""The ceiling: a bare Flask endpoint returning a lookup's JSON, nothing else.

Served by gunicorn with the same settings as a Bazar node (one worker, gthread,
same threads), so `loadtests/bench.py` can say how close each route gets.
"""

from flask import Flask, jsonify

app = Flask(__name__)
BOOK = {
    "id": 1,
    "title": "How to get a good grade in DOS in 20 minutes a day",
    "topic": "distributed systems",
    "cost": 50.0,
    "quantity": 900,
}


@app.get("/lookup/<int:book_id>")
def lookup(book_id: int):
    return jsonify(BOOK)
