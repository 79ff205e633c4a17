# %% [markdown]
# # A text classifier as a web service
#
# From a few lines of data to a model other programs can call over HTTP:
#
# 1. make a small (seeded) set of movie-review sentences,
# 2. train a TF-IDF + logistic-regression pipeline **on a worker** with `%%aiaas train`,
# 3. `%aiaas deploy` it: a model server starts on this machine (127.0.0.1) and keeps running
#    after the kernel stops,
# 4. call it with plain HTTP (`requests`, with what `aiaas_jupyter.endpoint` gives), with
#    `%aiaas predict`, and through the Open Inference Protocol v2 that Triton, KServe and MLServer
#    clients speak,
# 5. deploy the built-in sentence-embedding model into the running server and call it with the
#    official `openai` client,
# 6. clean up: undeploy, stop the server, disconnect.

# %%
%load_ext aiaas_jupyter
import aiaas_jupyter
import httpx
import numpy as np
import pandas as pd

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas connect

# %% [markdown]
# ## A small data set
#
# 400 short sentences: neutral filler words plus one to three words that carry the sentiment,
# and, in one sentence out of six, a word of the other side to make it less easy.

# %%
rng = np.random.default_rng(2)
good = "good great excellent wonderful moving clever charming delightful superb fun".split()
bad = "bad awful boring dull weak clumsy tedious bland messy poor".split()
filler = "the a this film movie plot story acting cast scene music ending was is and very quite rather".split()


def sentence(positive: bool) -> str:
    words = list(rng.choice(filler, rng.integers(5, 9))) + list(rng.choice(good if positive else bad, rng.integers(1, 4)))
    if rng.random() < 1 / 6:
        words.append(rng.choice(bad if positive else good))
    rng.shuffle(words)
    return " ".join(words)


labels = rng.permutation(["positive", "negative"] * 200)
reviews = pd.DataFrame({"text": [sentence(label == "positive") for label in labels], "label": labels})
print(reviews.shape, reviews["label"].value_counts().to_dict())
reviews.head(3)

# %% [markdown]
# ## Train on a worker
#
# The cell defines `model`: TF-IDF on the `text` column (word uni- and bigrams) feeding a logistic
# regression. The trainer hands the model its feature columns as a DataFrame, so the vectorizer
# names its column in a `ColumnTransformer`; the model server recognises this shape and serves
# it as a text model (one string per row).

# %% tags=["nbval-ignore-output"]
%%aiaas train --data reviews --target label --name sentiment --block
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

model = make_pipeline(ColumnTransformer([("tfidf", TfidfVectorizer(ngram_range=(1, 2)), "text")]),
                      LogisticRegression(max_iter=1000))

# %%
v1 = aiaas_jupyter.model("sentiment:1")
print(v1.ref, "| held-out accuracy", round(v1.metrics["accuracy"], 3),
      "| train/test rows", v1.extra["n_train"], "/", v1.extra["n_test"])

# %% [markdown]
# ## Deploy
#
# `%aiaas deploy` starts this registry's model server (one per `$AIAAS_HOME`, on a free port of
# 127.0.0.1) and loads the model into it. Every route but the health checks needs the server's
# bearer token; the display shows only its first four characters.

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy sentiment

# %% [markdown]
# ## Call it over HTTP
#
# Any HTTP client works. `aiaas_jupyter.endpoint(NAME)` gives what it needs — the URLs and the
# `Authorization` header with the server's bearer token (read from its file when used; its
# display shows only the first four characters). The plain route takes `{"text": ...}`: one
# string answers its `label` and class `probabilities`, a list one prediction per text:

# %%
import requests

ep = aiaas_jupyter.endpoint("sentiment")   # also: %aiaas endpoints show sentiment -o ep

answer = requests.post(ep.predict_url, json={"text": "a wonderful and moving film"},
                       headers=ep.headers, verify=ep.verify).json()
print(answer["label"], {c: round(p, 2) for c, p in answer["probabilities"].items()})

r = requests.post(ep.predict_url, headers=ep.headers, verify=ep.verify,
                  json={"text": ["a wonderful and moving film", "the plot was dull and the acting weak"]})
print(r.status_code, r.json()["predictions"])

# %% [markdown]
# The same model speaks the Open Inference Protocol v2 (the REST API of Triton, KServe and
# MLServer): a BYTES tensor of sentences in, the labels — and, on request, the class
# probabilities — out.

# %%
request = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                       "data": ["clever and charming", "boring tedious story"]}],
           "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
answer = httpx.post(ep.infer_url, headers=ep.headers, json=request).json()
for out in answer["outputs"]:
    data = np.reshape(out["data"], out["shape"])
    print(out["name"], out["datatype"], out["shape"], np.round(data, 2).tolist() if out["datatype"] == "FP64" else data.tolist())

# %% [markdown]
# From the notebook, `%aiaas predict` does the same (and returns a numpy array):

# %%
%aiaas predict sentiment --input '["a delightful film, great cast", "awful, just awful"]'

# %% [markdown]
# ## Embeddings with the `openai` client
#
# The server also carries a sentence-embedding model (all-MiniLM-L6-v2, shipped in a Python
# package: nothing is downloaded). One line loads it into the running server — no restart — behind
# an OpenAI-compatible `/v1/embeddings`, so the official `openai` client works with the URL and
# key `aiaas_jupyter.endpoint` gives:

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas deploy all-minilm-l6-v2

# %%
from openai import OpenAI

minilm = aiaas_jupyter.endpoint("all-minilm-l6-v2")
client = OpenAI(base_url=minilm.openai_url, api_key=minilm.api_key)
texts = ["The film was wonderful.", "I loved this movie.", "The train leaves at noon."]
response = client.embeddings.create(model=minilm.model, input=texts)
vectors = np.array([d.embedding for d in response.data])
unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
print(response.model, vectors.shape)
pd.DataFrame(unit @ unit.T, index=texts, columns=range(3)).round(1) + 0.0   # cosine similarities

# %% [markdown]
# Deployments and remote endpoints, with their health:

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas endpoints

# %% [markdown]
# ## Clean up
#
# The server would outlive this kernel (so deployed models stay up); here we undeploy, stop it
# and close the cluster. The registry keeps the model, and `deployments.json` remembers what
# was deployed for the server's next start.

# %%
%aiaas undeploy sentiment

# %%
from aiaas_jupyter.serving.state import find_server

aiaas_jupyter.stop_server()
print("model server running:", find_server(aiaas_jupyter.get_client().registry.home) is not None)

# %%
# NBVAL_IGNORE_OUTPUT

%aiaas disconnect
