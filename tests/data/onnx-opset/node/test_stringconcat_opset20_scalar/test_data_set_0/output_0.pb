2
pre-日本2pre-2pre-語By