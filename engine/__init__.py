print("engine")
