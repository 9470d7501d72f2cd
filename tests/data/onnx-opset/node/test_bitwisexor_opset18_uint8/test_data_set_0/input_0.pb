BaJП™HCояGНPГ
Z•ј